/**
 * Per-output-channel 8-bit weight formats for 2-D weight matrices (Linear weights, (out, in)): each row r keeps
 * 8-bit codes q and one f32 scale s[r], and w ~ decode(q) * s[r].
 * - 'int8': weight-only int8, s = amax(|row|) / 127, q = round(w / s) (ties to even) clamped to [-127, 127].
 * - 'fp8': OCP FP8 E4M3 ("e4m3fn": bias 7, max 448, no infinities, NaN = 0x7f/0xff), s = amax(|row|) / 448,
 *   q = the e4m3 code of w / s, rounded to nearest even, saturating at +-448.
 * Quantization runs on the host (at load time); dequantization is a device op (CPU backend + CUDA kernel) that
 * computes decode(q) * s in f32 (one rounding) and rounds to the output dtype, so both backends agree bit for bit.
 */
import { ShapeError, TensorError } from './errors.js';

export type Weight8Format = 'int8' | 'fp8';
export const WEIGHT8_FORMATS: readonly Weight8Format[] = ['int8', 'fp8'];
/** Largest magnitude a code of the format holds (the row's amax maps to it). */
export const WEIGHT8_MAX: Record<Weight8Format, number> = { int8: 127, fp8: 448 };

/** A weight that cannot be quantized (non-finite values) or a bad format name. */
export class QuantizeError extends TensorError {
  constructor(message: string) {
    super(message, 'E_QUANT');
  }
}

export function assertWeight8Format(f: string): asserts f is Weight8Format {
  if (!(WEIGHT8_FORMATS as readonly string[]).includes(f)) throw new QuantizeError(`unknown 8-bit weight format '${f}' (expected int8 or fp8)`);
}

/**
 * Which parameters the 8-bit formats apply to: 2-D matrices with at least 16 columns (Linear weights). Biases,
 * norm weights and narrow matrices stay in the model dtype (a row's f32 scale would cost more than it saves).
 */
export function isQuantizable8(shape: readonly number[]): boolean {
  return shape.length === 2 && shape[1] >= 16 && shape[0] >= 1;
}

// ---- FP8 E4M3 (OCP e4m3fn) bit-level encode/decode
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The e4m3fn code of x (first rounded to f32, as a GPU would hold it): round to nearest, ties to even,
 * saturating to +-448 (also for +-Infinity); NaN -> 0x7f. -0 keeps its sign (0x80).
 */
export function fp8e4m3Encode(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 24) & 0x80;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff && mant !== 0) return 0x7f;
  const a = bits & 0x7fffffff;
  if (a >= 0x43e00000) return sign | 0x7e; // |x| >= 448 (or inf): saturate
  if (exp === 0) return sign; // f32 zero/subnormal (< 2^-126): rounds to 0
  const e = exp - 127;
  if (e >= -6) {
    // normal e4m3: keep 3 of 23 mantissa bits; a carry out of the mantissa bumps the exponent (still <= 448)
    let code = ((e + 7) << 3) | (mant >>> 20);
    const rest = mant & 0xfffff;
    if (rest > 0x80000 || (rest === 0x80000 && (code & 1))) code++;
    return sign | code;
  }
  // subnormal e4m3: units of 2^-9; value / 2^-9 = sig * 2^(e + 9 - 23), sig the 24-bit significand
  const shift = 14 - e; // >= 21
  if (shift > 40) return sign;
  const sig = (1 << 23) | mant;
  const unit = 2 ** shift;
  let q = Math.floor(sig / unit);
  const rest = sig - q * unit;
  const half = unit / 2;
  if (rest > half || (rest === half && (q & 1))) q++;
  return sign | q; // q = 8 is exactly the smallest normal's code 0x08
}

/** The value of an e4m3fn code (exact in f32): 0x7f/0xff are NaN. */
export function fp8e4m3Decode(code: number): number {
  const s = code & 0x80 ? -1 : 1;
  const e = (code >>> 3) & 15;
  const m = code & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

const FP8_TABLE = Float32Array.from({ length: 256 }, (_, c) => fp8e4m3Decode(c));
const INT8_TABLE = Float32Array.from({ length: 256 }, (_, c) => (c << 24) >> 24);
/** decode(code) as f32 for every code of a format (what the dequantize op multiplies by the row scale). */
export function weight8DecodeTable(format: Weight8Format): Float32Array {
  return format === 'fp8' ? FP8_TABLE : INT8_TABLE;
}

/** 1.5 * 2^52: x + M - M rounds x to an integer, ties to even, in double arithmetic. */
const ROUND_MAGIC = 6755399441055744;

/**
 * Quantize a row-major (rows, cols) matrix of f32 values into `codes` (rows*cols bytes, at codesOffset) and
 * `scales` (rows f32, at scalesOffset). Rows of zeros get scale 0 and codes 0. Throws on non-finite values.
 */
export function quantize8Host(
  values: Float32Array, rows: number, cols: number, format: Weight8Format,
  codes: Uint8Array, scales: Float32Array, codesOffset = 0, scalesOffset = 0,
): void {
  assertWeight8Format(format);
  if (values.length !== rows * cols) throw new ShapeError(`quantize8: ${values.length} values for a (${rows}, ${cols}) matrix`);
  const q = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let amax = 0;
    let nonFinite = 0; // stays 0 unless a value is +-Infinity or NaN (x * 0 is NaN only for those)
    for (let i = 0; i < cols; i++) {
      const v = values[base + i];
      const a = Math.abs(v);
      amax = a > amax ? a : amax; // a select, not a branch: 4x faster here
      nonFinite += v * 0;
    }
    if (nonFinite !== 0) {
      const bad = values.subarray(base, base + cols).find((v) => !Number.isFinite(v));
      throw new QuantizeError(`quantize8: row ${r} holds a non-finite value (${bad}); 8-bit formats need finite weights`);
    }
    const s = rowScale(amax, format, scales, scalesOffset + r);
    if (s === 0) codes.fill(0, codesOffset + base, codesOffset + base + cols);
    else {
      for (let i = 0; i < cols; i++) q[i] = values[base + i] / s;
      encodeRow(q, format, codes, codesOffset + base);
    }
  }
}

/**
 * quantize8Host for bf16 weights given as their bit patterns (the host form of a bf16 tensor): the same codes and
 * scales as quantize8Host(their f32 values), without widening the whole matrix to f32 first. The row maximum is an
 * integer maximum (for non-negative floats the bit patterns order like the values).
 */
export function quantize8HostBf16(
  bits: Uint16Array, rows: number, cols: number, format: Weight8Format,
  codes: Uint8Array, scales: Float32Array, codesOffset = 0, scalesOffset = 0,
): void {
  assertWeight8Format(format);
  if (bits.length !== rows * cols) throw new ShapeError(`quantize8: ${bits.length} values for a (${rows}, ${cols}) matrix`);
  const row = new Float32Array(cols);
  const rowBits = new Uint32Array(row.buffer);
  const q = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let amaxBits = 0;
    let special = 0; // exponent all ones: +-Infinity or NaN
    for (let i = 0; i < cols; i++) {
      const b = bits[base + i];
      const a = b & 0x7fff;
      amaxBits = a > amaxBits ? a : amaxBits;
      special |= (b & 0x7f80) === 0x7f80 ? 1 : 0;
    }
    if (special) throw new QuantizeError(`quantize8: row ${r} holds a non-finite value; 8-bit formats need finite weights`);
    rowBits[0] = amaxBits << 16;
    const s = rowScale(row[0], format, scales, scalesOffset + r);
    if (s === 0) codes.fill(0, codesOffset + base, codesOffset + base + cols);
    else {
      for (let i = 0; i < cols; i++) rowBits[i] = bits[base + i] << 16;
      for (let i = 0; i < cols; i++) q[i] = row[i] / s;
      encodeRow(q, format, codes, codesOffset + base);
    }
  }
}

/** The row's f32 scale (stored), amax / the format's largest code value. */
function rowScale(amax: number, format: Weight8Format, scales: Float32Array, at: number): number {
  const s = Math.fround(amax / WEIGHT8_MAX[format]);
  scales[at] = s;
  return s;
}

/**
 * Codes of one row of f32 quotients (`q`, already value / scale; assigning to a Float32Array rounds like
 * Math.fround: exact double rounding, f32 keeps > 2*4+2 bits). Tight loops: this runs over every streamed weight
 * at load time (12.4e9 values for the 13B DiT).
 */
function encodeRow(q: Float32Array, format: Weight8Format, codes: Uint8Array, out: number): void {
  const cols = q.length;
  if (format === 'int8') {
    for (let i = 0; i < cols; i++) {
      // round half to even by the IEEE default rounding of the add (exact for |x| < 2^51); Math.round is a
      // runtime call on some CPUs and was 6x slower here
      const n = q[i] + ROUND_MAGIC - ROUND_MAGIC;
      codes[out + i] = (n > 127 ? 127 : n < -127 ? -127 : n) & 0xff;
    }
    return;
  }
  const qBits = new Uint32Array(q.buffer, q.byteOffset, cols);
  for (let i = 0; i < cols; i++) {
    const bits = qBits[i];
    const exp = (bits >>> 23) & 0xff;
    // the normal e4m3 range inline (|x| in [2^-6, 448)); zeros, subnormals and saturation through the full encoder
    if (exp >= 121 && (bits & 0x7fffffff) < 0x43e00000) {
      const mant = bits & 0x7fffff;
      let code = ((exp - 120) << 3) | (mant >>> 20);
      const rest = mant & 0xfffff;
      if (rest > 0x80000 || (rest === 0x80000 && (code & 1) !== 0)) code++;
      codes[out + i] = ((bits >>> 24) & 0x80) | code;
    } else {
      codes[out + i] = fp8e4m3Encode(q[i]);
    }
  }
}
