/** 8-bit weight tensors: quantize (host) and the dequantize device op; the codec is in quant8-codec.ts. */
import type { DType } from './dtype.js';
import { isFloat } from './dtype.js';
import { DTypeError, ShapeError } from './errors.js';
import { fromHost, toDevice, zeros } from './ops.js';
import { assertWeight8Format, quantize8Host, type Weight8Format } from './quant8-codec.js';
import type { Tensor } from './tensor.js';

/** A quantized matrix: codes (rows, cols) u8 and scales (rows) f32, both on the CPU. */
export interface Quantized8 {
  format: Weight8Format;
  codes: Tensor;
  scales: Tensor;
}

/** Quantize a 2-D float tensor (any device; read on the host) per output row. */
export function quantize8(w: Tensor, format: Weight8Format): Quantized8 {
  assertWeight8Format(format);
  if (w.ndim !== 2) throw new ShapeError(`quantize8 takes a 2-D (out, in) matrix, got [${w.shape}]`);
  if (!isFloat(w.dtype)) throw new DTypeError(`quantize8 takes float weights, got ${w.dtype}`);
  const [rows, cols] = w.shape;
  const onHost = toDevice(w, 'cpu');
  const values = onHost.toFloat32Array();
  onHost.dispose();
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows);
  quantize8Host(values, rows, cols, format, codes, scales);
  return { format, codes: fromHost(codes, [rows, cols], 'u8'), scales: fromHost(scales, [rows], 'f32') };
}

function checkDequant(codes: Tensor, scales: Tensor): void {
  if (codes.dtype !== 'u8' || codes.ndim !== 2) throw new ShapeError(`dequantize8: codes must be a 2-D u8 tensor, got ${codes.dtype} [${codes.shape}]`);
  if (scales.dtype !== 'f32' || scales.ndim !== 1 || scales.shape[0] !== codes.shape[0]) throw new ShapeError(`dequantize8: scales must be f32 [${codes.shape[0]}], got ${scales.dtype} [${scales.shape}]`);
  if (codes.device !== scales.device) throw new ShapeError(`dequantize8: codes on ${codes.device}, scales on ${scales.device}`);
}

/** In place: dst (rows, cols) or any shape of rows*cols values (f32/f16/bf16) = decode(codes) * scales[row]. */
export function dequantize8Into(dst: Tensor, codes: Tensor, scales: Tensor, format: Weight8Format): Tensor {
  assertWeight8Format(format);
  checkDequant(codes, scales);
  if (!isFloat(dst.dtype)) throw new DTypeError(`dequantize8 writes f32, f16 or bf16, not ${dst.dtype}`);
  if (dst.numel !== codes.numel) throw new ShapeError(`dequantize8: dst [${dst.shape}] does not hold codes [${codes.shape}]`);
  if (dst.device !== codes.device) throw new ShapeError(`dequantize8: dst on ${dst.device}, codes on ${codes.device}`);
  if (dst.numel > 0) dst.backend.dequantize8(dst.view, codes.view, scales.view, format, codes.shape[1]);
  return dst;
}

/** decode(codes) * scales[row] as a new (rows, cols) tensor of `dtype` on the codes' device. */
export function dequantize8(codes: Tensor, scales: Tensor, format: Weight8Format, dtype: DType = 'f32'): Tensor {
  checkDequant(codes, scales);
  const out = zeros(codes.shape, { dtype, device: codes.device });
  try {
    return dequantize8Into(out, codes, scales, format);
  } catch (e) {
    out.dispose();
    throw e;
  }
}

/**
 * dequantize(quantize(w)) in w's dtype and device: the weight a model sees when the matrix is stored in 8 bits
 * (for references and quality checks).
 */
export function roundTrip8(w: Tensor, format: Weight8Format): Tensor {
  const q = quantize8(w, format);
  const c = toDevice(q.codes, w.device), s = toDevice(q.scales, w.device);
  q.codes.dispose();
  q.scales.dispose();
  const out = dequantize8(c, s, format, w.dtype);
  c.dispose();
  s.dispose();
  return out;
}
