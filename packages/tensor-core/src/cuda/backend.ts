// The CUDA backend: the Backend contract over the native addon. Storage handles are device buffers from the
// addon's caching allocator; every op launches asynchronously on the compute stream, downloads synchronize.
// Floating-point ops keep bf16/f16/f32 storage and accumulate in f32 (reductions over an axis in f64).
import type { AttentionParams, Backend, BinaryOp, CompareOp, PadMode, ReduceOp, RopeMode, Storage, UnaryOp, View } from '../backend.js';
import { allocHost, BYTES_PER_ELEMENT, type DType, f32ToBf16Bits, f32ToF16Bits, type HostArray, isFloat } from '../dtype.js';
import { broadcastStrides, stridesOf } from '../shape.js';
import type { Addon, DeviceInfo, Ptr } from './native.js';

interface CudaHandle {
  ptr: Ptr;
  bytes: number;
}
interface CudaStorage extends Storage {
  readonly handle: CudaHandle;
}

const DT: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, i32: 3, i64: 4, u8: 5, bool: 6 };
const UNARY: UnaryOp[] = ['neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'recip', 'sin', 'cos', 'silu', 'gelu_tanh', 'gelu_erf', 'quick_gelu', 'sigmoid', 'tanh', 'relu'];
const BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow'];
const COMPARE: CompareOp[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const REDUCE: ReduceOp[] = ['sum', 'mean', 'max', 'min', 'argmax'];
const MAXD = 10;

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const esize = (d: DType) => BYTES_PER_ELEMENT[d];
/** The device address of a view's first element. */
const ptr = (v: View): Ptr => (v.storage as CudaStorage).handle.ptr + v.offset * esize(v.dtype);
const optPtr = (v: View | null | undefined): Ptr | null => (v ? ptr(v) : null);
/** 16-bit pattern of a value in a half dtype (0 for other dtypes). */
const bits16 = (dtype: DType, v: number) => (dtype === 'bf16' ? f32ToBf16Bits(v) : dtype === 'f16' ? f32ToF16Bits(v) : 0);
const around = (shape: readonly number[], axis: number): [number, number, number] => [numel(shape.slice(0, axis)), shape[axis], numel(shape.slice(axis + 1))];

/** Merge adjacent dims that are contiguous in both source and destination, and drop unit dims. */
function collapse(shape: readonly number[], src: readonly number[], dst: readonly number[]): [number[], number[], number[]] {
  const s: number[] = [], a: number[] = [], b: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = s.length - 1;
    if (k >= 0 && a[k] === src[i] * shape[i] && b[k] === dst[i] * shape[i]) {
      s[k] *= shape[i];
      a[k] = src[i];
      b[k] = dst[i];
    } else {
      s.push(shape[i]);
      a.push(src[i]);
      b.push(dst[i]);
    }
  }
  if (s.length === 0) return [[1], [0], [0]];
  if (s.length > MAXD) throw new RangeError(`CUDA backend: a copy over ${s.length} non-mergeable dims exceeds ${MAXD}`);
  return [s, a, b];
}

/** Flat broadcast descriptor for the addon: [nd, mode0..2, ...shape, ...strides per operand]. */
function bcast(outShape: readonly number[], ...shapes: (readonly number[])[]): number[] {
  const n = numel(outShape);
  const modes = [0, 0, 0];
  const strides: number[][] = [[], [], []];
  shapes.forEach((s, k) => {
    const same = s.length <= outShape.length && numel(s) === n;
    modes[k] = same ? 0 : numel(s) === 1 ? 1 : 2;
    strides[k] = broadcastStrides(s, outShape);
  });
  // drop unit dims of the output
  const keep = outShape.map((d, i) => (d !== 1 ? i : -1)).filter((i) => i >= 0);
  if (keep.length > MAXD) throw new RangeError(`CUDA backend: broadcasting over ${keep.length} dims exceeds ${MAXD}`);
  const shape = keep.map((i) => outShape[i]);
  return [shape.length, ...modes, ...shape, ...[0, 1, 2].flatMap((k) => keep.map((i) => strides[k][i] ?? 0))];
}

/**
 * The vectorized binary path's view of b against a full-shaped a: [0] same shape, [1] scalar, or [2, M, Q] when b
 * is a [P, 1, Q] row broadcast of the [P, M, Q] output; null otherwise.
 */
function rowPattern(bShape: readonly number[], outShape: readonly number[]): number[] | null {
  const n = numel(outShape), nb = numel(bShape);
  if (nb === n) return [0, 1, 1];
  if (nb === 1) return [1, 1, 1];
  const off = outShape.length - bShape.length;
  let phase = 0; // 0 leading equal dims, 1 broadcast dims, 2 trailing equal dims
  let M = 1, Q = 1;
  for (let d = 0; d < outShape.length; d++) {
    const o = outShape[d], bd = d < off ? 1 : bShape[d - off];
    if (o === 1) continue;
    if (bd === o) {
      if (phase === 1) phase = 2;
      if (phase === 2) Q *= o;
    } else {
      if (phase === 2) return null;
      phase = 1;
      M *= o;
    }
  }
  return phase === 0 ? [0, 1, 1] : [2, M, Q];
}
const COMMUTATIVE = new Set<BinaryOp>(['add', 'mul', 'max', 'min']);

export class CudaBackend implements Backend {
  readonly device = 'cuda' as const;
  constructor(
    readonly addon: Addon,
    readonly info: DeviceInfo,
  ) {}

  private alloc(n: number, dtype: DType): CudaStorage {
    const bytes = n * esize(dtype);
    // the addon's errors arrive typed (see typedErrors in ./index.ts): OutOfMemoryError names the budget
    const p: Ptr = this.addon.alloc(bytes);
    return { device: 'cuda', dtype, numel: n, handle: { ptr: p, bytes } };
  }

  zeros(n: number, dtype: DType): Storage {
    const s = this.alloc(n, dtype);
    this.addon.memset0(s.handle.ptr, s.handle.bytes);
    return s;
  }
  fill(n: number, dtype: DType, value: number): Storage {
    const s = this.alloc(n, dtype);
    this.addon.fill(s.handle.ptr, n, esize(dtype), value, DT[dtype], bits16(dtype, value));
    return s;
  }
  upload(data: HostArray, dtype: DType): Storage {
    const s = this.alloc(data.length, dtype);
    this.addon.upload(s.handle.ptr, data);
    return s;
  }
  download(v: View): HostArray {
    const out = allocHost(v.dtype, numel(v.shape));
    this.addon.download(ptr(v), out);
    return out;
  }
  release(s: Storage): void {
    this.addon.free((s as CudaStorage).handle.ptr);
  }
  bytesOf(s: Storage): number {
    return s.numel * esize(s.dtype);
  }

  copy(v: View): Storage {
    const n = numel(v.shape);
    const s = this.alloc(n, v.dtype);
    this.addon.copyD2D(s.handle.ptr, ptr(v), n * esize(v.dtype));
    return s;
  }
  cast(v: View, to: DType): Storage {
    const n = numel(v.shape);
    const s = this.alloc(n, to);
    this.addon.cast(ptr(v), DT[v.dtype], s.handle.ptr, DT[to], n);
    return s;
  }
  unary(op: UnaryOp, v: View): Storage {
    const n = numel(v.shape);
    const s = this.alloc(n, v.dtype);
    this.addon.unary(UNARY.indexOf(op), ptr(v), s.handle.ptr, DT[v.dtype], n);
    return s;
  }
  binary(op: BinaryOp, a: View, b: View, outShape: readonly number[]): Storage {
    const n = numel(outShape);
    const s = this.alloc(n, a.dtype);
    // float ops with one full-shaped operand take the vectorized path when the other one is same-shaped,
    // a scalar or a row broadcast (commutative ops may swap operands for that)
    let [x, y] = [a, b];
    if (isFloat(a.dtype) && numel(a.shape) !== n && numel(b.shape) === n && COMMUTATIVE.has(op)) [x, y] = [b, a];
    const fast = isFloat(a.dtype) && numel(x.shape) === n ? rowPattern(y.shape, outShape) : null;
    this.addon.binary(BINARY.indexOf(op), ptr(x), ptr(y), s.handle.ptr, DT[a.dtype], n, bcast(outShape, x.shape, y.shape), fast ?? undefined);
    return s;
  }
  compare(op: CompareOp, a: View, b: View, outShape: readonly number[]): Storage {
    const n = numel(outShape);
    const s = this.alloc(n, 'bool');
    this.addon.compare(COMPARE.indexOf(op), ptr(a), ptr(b), s.handle.ptr, DT[a.dtype], n, bcast(outShape, a.shape, b.shape));
    return s;
  }
  where(cond: View, a: View, b: View, outShape: readonly number[]): Storage {
    const n = numel(outShape);
    const s = this.alloc(n, a.dtype);
    this.addon.where(ptr(cond), ptr(a), ptr(b), s.handle.ptr, esize(a.dtype), n, bcast(outShape, cond.shape, a.shape, b.shape));
    return s;
  }
  private affineOp(op: number, v: View, p0: number, p1: number): Storage {
    const n = numel(v.shape);
    const s = this.alloc(n, v.dtype);
    this.addon.affine(op, ptr(v), s.handle.ptr, DT[v.dtype], n, p0, p1);
    return s;
  }
  affine(v: View, mul: number, add: number): Storage {
    return this.affineOp(0, v, mul, add);
  }
  powScalar(v: View, p: number): Storage {
    return this.affineOp(1, v, p, 0);
  }
  clamp(v: View, lo: number, hi: number): Storage {
    return this.affineOp(2, v, lo, hi);
  }
  reduce(op: ReduceOp, v: View, axis: number): Storage {
    const [outer, len, inner] = around(v.shape, axis);
    const s = this.alloc(outer * inner, op === 'argmax' ? 'i64' : v.dtype);
    this.addon.reduce(REDUCE.indexOf(op), ptr(v), s.handle.ptr, DT[v.dtype], outer, len, inner);
    return s;
  }
  variance(v: View, axis: number, correction: number): Storage {
    const [outer, len, inner] = around(v.shape, axis);
    const s = this.alloc(outer * inner, v.dtype);
    this.addon.variance(ptr(v), s.handle.ptr, DT[v.dtype], outer, len, inner, correction);
    return s;
  }
  softmax(v: View): Storage {
    const n = numel(v.shape), d = v.shape[v.shape.length - 1];
    const s = this.alloc(n, v.dtype);
    if (n) this.addon.softmax(ptr(v), s.handle.ptr, DT[v.dtype], n / d, d);
    return s;
  }
  layerNorm(v: View, weight: View | null, bias: View | null, eps: number): Storage {
    const n = numel(v.shape), d = v.shape[v.shape.length - 1];
    const s = this.alloc(n, v.dtype);
    if (n) this.addon.norm(ptr(v), optPtr(weight), optPtr(bias), s.handle.ptr, DT[v.dtype], n / d, d, eps, 0);
    return s;
  }
  rmsNorm(v: View, weight: View | null, eps: number): Storage {
    const n = numel(v.shape), d = v.shape[v.shape.length - 1];
    const s = this.alloc(n, v.dtype);
    if (n) this.addon.norm(ptr(v), optPtr(weight), null, s.handle.ptr, DT[v.dtype], n / d, d, eps, 1);
    return s;
  }
  groupNorm(v: View, groups: number, weight: View | null, bias: View | null, eps: number): Storage {
    const [n, c] = v.shape;
    const spatial = numel(v.shape.slice(2));
    const s = this.alloc(numel(v.shape), v.dtype);
    this.addon.groupNorm(ptr(v), optPtr(weight), optPtr(bias), s.handle.ptr, DT[v.dtype], n, c, spatial, groups, eps);
    return s;
  }
  matmul(a: View, b: View, transB: boolean, outBatch: readonly number[]): Storage {
    const [m, k] = a.shape.slice(-2);
    const n = transB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const nb = numel(outBatch), na = numel(a.shape.slice(0, -2)), nbB = numel(b.shape.slice(0, -2));
    const s = this.alloc(nb * m * n, a.dtype);
    if (nb * m * n === 0) return s;
    if (k === 0) {
      this.addon.memset0(s.handle.ptr, s.handle.bytes);
      return s;
    }
    const dt = DT[a.dtype], es = esize(a.dtype);
    const pa = ptr(a), pb = ptr(b), pc = s.handle.ptr;
    if (nbB === 1 && na === nb) {
      // one right operand for every batch: fold the batch into M (a is contiguous)
      this.addon.gemm(pa, pb, null, pc, dt, nb * m, n, k, 1, 0, 0, 0, transB);
    } else if ((na === nb || na === 1) && (nbB === nb || nbB === 1)) {
      this.addon.gemm(pa, pb, null, pc, dt, m, n, k, nb, na === 1 ? 0 : m * k, nbB === 1 ? 0 : k * n, m * n, transB);
    } else {
      // general broadcast of the batch dims: one GEMM per output batch
      const aSt = broadcastStrides(a.shape.slice(0, -2), outBatch), bSt = broadcastStrides(b.shape.slice(0, -2), outBatch);
      const bsStr = stridesOf(outBatch);
      for (let i = 0; i < nb; i++) {
        let ai = 0, bi = 0;
        for (let d = 0; d < outBatch.length; d++) {
          const c = Math.floor(i / bsStr[d]) % outBatch[d];
          ai += c * aSt[d];
          bi += c * bSt[d];
        }
        this.addon.gemm(pa + ai * m * k * es, pb + bi * k * n * es, null, pc + i * m * n * es, dt, m, n, k, 1, 0, 0, 0, transB);
      }
    }
    return s;
  }
  linear(x: View, w: View, bias: View | null): Storage {
    const [n, k] = w.shape;
    const rows = numel(x.shape) / k;
    const s = this.alloc(rows * n, x.dtype);
    if (rows * n === 0) return s;
    if (k === 0) {
      this.addon.memset0(s.handle.ptr, s.handle.bytes);
      if (bias) this.addon.binary(0, s.handle.ptr, ptr(bias), s.handle.ptr, DT[x.dtype], rows * n, bcast([rows, n], [rows, n], [n]));
      return s;
    }
    this.addon.gemm(ptr(x), ptr(w), optPtr(bias), s.handle.ptr, DT[x.dtype], rows, n, k, 1, 0, 0, 0, true);
    return s;
  }
  attention(q: View, k: View, v: View, p: AttentionParams): Storage {
    const [B, H, Lq, D] = q.shape;
    const Lk = k.shape[2], Dv = v.shape[3];
    const s = this.alloc(B * H * Lq * Dv, q.dtype);
    const mst = p.mask ? broadcastStrides(p.mask.shape, [B, H, Lq, Lk]) : [0, 0, 0, 0];
    this.addon.attention(ptr(q), ptr(k), ptr(v), s.handle.ptr, optPtr(p.mask), mst, DT[q.dtype], B, H, Lq, Lk, D, Dv, !!p.causal, p.scale);
    return s;
  }
  attentionBLHD(q: View, k: View, v: View, p: AttentionParams): Storage | null {
    const [B, Lq, H, D] = q.shape;
    const Lk = k.shape[1], Dv = v.shape[3];
    if (D !== Dv) return null;
    const s = this.alloc(B * Lq * H * Dv, q.dtype);
    const mst = p.mask ? broadcastStrides(p.mask.shape, [B, H, Lq, Lk]) : [0, 0, 0, 0];
    // the native side says whether a kernel here reads this layout (the Hopper one); otherwise the caller transposes
    if (this.addon.attention(ptr(q), ptr(k), ptr(v), s.handle.ptr, optPtr(p.mask), mst, DT[q.dtype], B, H, Lq, Lk, D, Dv, !!p.causal, p.scale, true)) return s;
    this.release(s);
    return null;
  }
  conv3d(x: View, w: View, bias: View | null, stride: readonly number[], padding: readonly number[], outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), x.dtype);
    this.addon.conv3d(ptr(x), ptr(w), optPtr(bias), s.handle.ptr, DT[x.dtype], [...x.shape], [...w.shape], [...outShape], [...stride], [...padding]);
    return s;
  }
  private strided(src: Ptr, dst: Ptr, dtype: DType, shape: readonly number[], srcSt: readonly number[], dstSt: readonly number[]): void {
    const n = numel(shape);
    if (n === 0) return;
    const [s, a, b] = collapse(shape, srcSt, dstSt);
    this.addon.stridedCopy(src, dst, esize(dtype), n, s, a, b);
  }
  upsampleNearest(v: View, scale: readonly number[], outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), v.dtype);
    // out index along a dim = q * scale + r reads input q: split each scaled dim into (q, r) with r of stride 0
    const inSt = stridesOf(v.shape);
    const shape: number[] = [], src: number[] = [];
    v.shape.forEach((d, i) => {
      shape.push(d);
      src.push(inSt[i]);
      if (scale[i] > 1) {
        shape.push(scale[i]);
        src.push(0);
      }
    });
    this.strided(ptr(v), s.handle.ptr, v.dtype, shape, src, stridesOf(shape));
    return s;
  }
  permute(v: View, dims: readonly number[], outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), v.dtype);
    const inSt = stridesOf(v.shape);
    this.strided(ptr(v), s.handle.ptr, v.dtype, outShape, dims.map((d) => inSt[d]), stridesOf(outShape));
    return s;
  }
  concat(vs: readonly View[], axis: number, outShape: readonly number[]): Storage {
    const dtype = vs[0].dtype;
    const s = this.alloc(numel(outShape), dtype);
    const outSt = stridesOf(outShape);
    let at = 0;
    for (const v of vs) {
      this.strided(ptr(v), s.handle.ptr + at * outSt[axis] * esize(dtype), dtype, v.shape, stridesOf(v.shape), outSt);
      at += v.shape[axis];
    }
    return s;
  }
  slice(v: View, axis: number, start: number, step: number, outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), v.dtype);
    const inSt = stridesOf(v.shape);
    const src = inSt.map((st, i) => (i === axis ? st * step : st));
    this.strided(ptr(v) + start * inSt[axis] * esize(v.dtype), s.handle.ptr, v.dtype, outShape, src, stridesOf(outShape));
    return s;
  }
  indexSelect(v: View, axis: number, index: View, outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), v.dtype);
    const [outer, len, inner] = around(v.shape, axis);
    this.addon.indexSelect(ptr(v), s.handle.ptr, esize(v.dtype), ptr(index), DT[index.dtype], outer, len, inner, numel(index.shape));
    return s;
  }
  gather(v: View, axis: number, index: View): Storage {
    const s = this.alloc(numel(index.shape), v.dtype);
    if (numel(index.shape) === 0) return s;
    this.addon.gather(ptr(v), s.handle.ptr, esize(v.dtype), ptr(index), DT[index.dtype], [...index.shape], [...v.shape], axis);
    return s;
  }
  pad(v: View, pads: readonly (readonly [number, number])[], mode: PadMode, value: number, outShape: readonly number[]): Storage {
    const s = this.alloc(numel(outShape), v.dtype);
    if (numel(outShape) === 0) return s;
    if (outShape.length > MAXD) throw new RangeError(`CUDA pad: ${outShape.length} dims exceed ${MAXD}`);
    this.addon.pad(ptr(v), s.handle.ptr, esize(v.dtype), [...outShape], [...v.shape], pads.map((p) => p[0]), mode === 'replicate' ? 1 : 0, value, DT[v.dtype], bits16(v.dtype, value));
    return s;
  }
  writeRegion(dst: View, src: View, starts: readonly number[]): void {
    const dSt = stridesOf(dst.shape);
    const base = starts.reduce((acc, s, i) => acc + s * dSt[i], 0);
    this.strided(ptr(src), ptr(dst) + base * esize(dst.dtype), dst.dtype, src.shape, stridesOf(src.shape), dSt);
  }
  dequantize8(dst: View, codes: View, scales: View, format: 'int8' | 'fp8', cols: number): void {
    const n = numel(codes.shape);
    if (n) this.addon.dequant8(ptr(codes), ptr(scales), ptr(dst), DT[dst.dtype], format === 'fp8' ? 1 : 0, n / cols, cols);
  }
  rope(x: View, cos: View, sin: View, mode: RopeMode, cosShape: readonly number[]): Storage {
    const n = numel(x.shape);
    const s = this.alloc(n, x.dtype);
    const D = x.shape[x.shape.length - 1];
    if (n) this.addon.rope(ptr(x), ptr(cos), ptr(sin), s.handle.ptr, DT[x.dtype], n, D, mode === 'half' ? 1 : 0, bcast(x.shape, cosShape));
    return s;
  }
}
