import type { BinaryOp, CompareOp, DeviceType, PadMode, ReduceOp, RopeMode, UnaryOp } from './backend.js';
import { backendFor } from './device.js';
import { allocHost, assertDType, type DType, f32ToHost, type HostArray, isFloat } from './dtype.js';
import { DeviceError, DTypeError, ShapeError } from './errors.js';
import { broadcastShapes, checkShape, normAxis, sameShape } from './shape.js';
import { numelOf, Tensor } from './tensor.js';

export interface CreateOptions {
  dtype?: DType;
  device?: DeviceType;
}

const wrap = (t: Tensor, storage: ReturnType<Tensor['backend']['copy']>, shape: readonly number[]) => Tensor.fromStorage(storage, shape, t.backend);

function sameDevice(...ts: Tensor[]): void {
  const d = ts[0].device;
  for (const t of ts) if (t.device !== d) throw new DeviceError(`operands are on different devices (${ts.map((x) => x.device).join(', ')}); move them with toDevice()`);
}
function sameDType(op: string, ...ts: Tensor[]): void {
  const d = ts[0].dtype;
  for (const t of ts) if (t.dtype !== d) throw new DTypeError(`${op}: operands have different dtypes (${ts.map((x) => x.dtype).join(', ')}); cast explicitly`);
}
function needFloat(op: string, t: Tensor): void {
  if (!isFloat(t.dtype)) throw new DTypeError(`${op} needs a floating-point tensor, got ${t.dtype}`);
}

// ------------------------------------------------------------------ creation

/** A tensor from host values. `data` may be a typed array in the dtype's host format or plain numbers. */
export function tensor(data: ArrayLike<number> | HostArray | readonly bigint[], shape: readonly number[], opts: CreateOptions = {}): Tensor {
  const dtype = opts.dtype ?? (data instanceof BigInt64Array ? 'i64' : data instanceof Int32Array ? 'i32' : 'f32');
  assertDType(dtype);
  checkShape(shape);
  const n = numelOf(shape);
  if (data.length !== n) throw new ShapeError(`${data.length} values cannot fill shape [${shape}] (${n} elements)`);
  let host: HostArray;
  const hostMatches =
    (dtype === 'f32' && data instanceof Float32Array) ||
    ((dtype === 'f16' || dtype === 'bf16') && data instanceof Uint16Array) ||
    (dtype === 'i32' && data instanceof Int32Array) ||
    (dtype === 'i64' && data instanceof BigInt64Array) ||
    ((dtype === 'u8' || dtype === 'bool') && data instanceof Uint8Array);
  if (hostMatches) host = (data as HostArray).slice();
  else if (dtype === 'i64') {
    host = allocHost('i64', n);
    for (let i = 0; i < n; i++) (host as BigInt64Array)[i] = BigInt(data[i] as number | bigint);
  } else host = f32ToHost(dtype, Float64Array.from(data as ArrayLike<number>));
  const b = backendFor(opts.device ?? 'cpu');
  return Tensor.fromStorage(b.upload(host, dtype), shape, b);
}
/** Wrap a host array without copying it: the tensor takes ownership (do not modify `host` afterwards). */
export function fromHost(host: HostArray, shape: readonly number[], dtype: DType, device: DeviceType = 'cpu'): Tensor {
  assertDType(dtype);
  checkShape(shape);
  if (host.length !== numelOf(shape)) throw new ShapeError(`${host.length} values cannot fill shape [${shape}]`);
  const b = backendFor(device);
  return Tensor.fromStorage(b.upload(host, dtype), shape, b);
}
export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return full([], value, opts);
}
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  checkShape(shape);
  const b = backendFor(opts.device ?? 'cpu');
  return Tensor.fromStorage(b.zeros(numelOf(shape), opts.dtype ?? 'f32'), shape, b);
}
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  checkShape(shape);
  const b = backendFor(opts.device ?? 'cpu');
  return Tensor.fromStorage(b.fill(numelOf(shape), opts.dtype ?? 'f32', value), shape, b);
}
export const ones = (shape: readonly number[], opts: CreateOptions = {}) => full(shape, 1, opts);
export const zerosLike = (t: Tensor) => zeros(t.shape, { dtype: t.dtype, device: t.device });
export const fullLike = (t: Tensor, v: number) => full(t.shape, v, { dtype: t.dtype, device: t.device });
/** [start, end) by step, like torch.arange (f32 unless a dtype is given). */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new ShapeError('arange step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = start + i * step;
  return tensor(v, [n], opts);
}

// ------------------------------------------------------------------ moves, casts, views

export function cast(x: Tensor, dtype: DType): Tensor {
  assertDType(dtype);
  if (x.dtype === dtype) return x.viewAs(x.shape);
  return wrap(x, x.backend.cast(x.view, dtype), x.shape);
}
/** Copy to another device (explicit: ops never move data implicitly). */
export function toDevice(x: Tensor, device: DeviceType): Tensor {
  if (x.device === device) return x.viewAs(x.shape);
  const b = backendFor(device);
  return Tensor.fromStorage(b.upload(x.toHost(), x.dtype), x.shape, b);
}
export function clone(x: Tensor): Tensor {
  return wrap(x, x.backend.copy(x.view), x.shape);
}

/** A view with a new shape (one dim may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const inferred = s.indexOf(-1);
  if (inferred !== s.lastIndexOf(-1)) throw new ShapeError(`reshape: only one dim may be -1, got [${shape}]`);
  if (inferred >= 0) {
    const rest = numelOf(s.filter((_, i) => i !== inferred));
    if (rest === 0 || x.numel % rest !== 0) throw new ShapeError(`reshape: cannot infer -1 in [${shape}] for ${x.numel} elements`);
    s[inferred] = x.numel / rest;
  }
  checkShape(s);
  if (numelOf(s) !== x.numel) throw new ShapeError(`reshape: [${x.shape}] (${x.numel} elements) cannot become [${shape}]`);
  return x.viewAs(s);
}
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const s = normAxis(startDim, x.ndim), e = normAxis(endDim, x.ndim);
  return reshape(x, [...x.shape.slice(0, s), numelOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis(dim, x.ndim + 1, 'dim');
  return x.viewAs([...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}
export function squeeze(x: Tensor, dim: number): Tensor {
  const d = normAxis(dim, x.ndim, 'dim');
  if (x.shape[d] !== 1) throw new ShapeError(`squeeze: dim ${dim} of [${x.shape}] is not 1`);
  return x.viewAs(x.shape.filter((_, i) => i !== d));
}
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) throw new ShapeError(`permute: ${dims.length} dims given for a ${x.ndim}-d tensor`);
  const nd = dims.map((d) => normAxis(d, x.ndim, 'dim'));
  if (new Set(nd).size !== nd.length) throw new ShapeError(`permute: dims [${dims}] repeat`);
  if (nd.every((d, i) => d === i)) return x.viewAs(x.shape);
  const outShape = nd.map((d) => x.shape[d]);
  // moving only size-1 dims keeps the memory order: a view suffices
  const nonUnit = nd.filter((d) => x.shape[d] !== 1);
  if (nonUnit.every((d, i) => i === 0 || d > nonUnit[i - 1])) return x.viewAs(outShape);
  return wrap(x, x.backend.permute(x.view, nd, outShape), outShape);
}
export function transpose(x: Tensor, a: number, b: number): Tensor {
  const dims = x.shape.map((_, i) => i);
  const [i, j] = [normAxis(a, x.ndim, 'dim'), normAxis(b, x.ndim, 'dim')];
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** Elements start..end (exclusive) by step along an axis; a view when it is the outermost non-unit axis with step 1. */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const a = normAxis(axis, x.ndim);
  const len = x.shape[a];
  let s = start < 0 ? start + len : start;
  let e = end === undefined ? len : end < 0 ? end + len : end;
  s = Math.min(Math.max(s, 0), len);
  e = Math.min(Math.max(e, s), len);
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`slice: step must be a positive integer, got ${step}`);
  const n = Math.ceil((e - s) / step);
  const outShape = x.shape.map((d, i) => (i === a ? n : d));
  if (step === 1 && x.shape.slice(0, a).every((d) => d === 1)) {
    return x.viewAs(outShape, s * numelOf(x.shape.slice(a + 1)));
  }
  return wrap(x, x.backend.slice(x.view, a, s, step, outShape), outShape);
}
export const narrow = (x: Tensor, axis: number, start: number, length: number) => slice(x, axis, start, start + length);

export function cat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new ShapeError('cat needs at least one tensor');
  sameDevice(...xs);
  sameDType('cat', ...xs);
  const a = normAxis(axis, xs[0].ndim);
  for (const t of xs) {
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i]))
      throw new ShapeError(`cat along ${axis}: shapes ${xs.map((x) => `[${x.shape}]`).join(', ')} differ off the axis`);
  }
  const outShape = xs[0].shape.map((d, i) => (i === a ? xs.reduce((s, t) => s + t.shape[a], 0) : d));
  return wrap(xs[0], xs[0].backend.concat(xs.map((t) => t.view), a, outShape), outShape);
}
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  return cat(xs.map((t) => unsqueeze(t, axis)), axis);
}
/** Split into pieces of the given sizes (a number = equal pieces of that size, the last may be smaller). */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, x.ndim);
  const len = x.shape[a];
  const parts = typeof sizes === 'number' ? Array.from({ length: Math.ceil(len / sizes) }, (_, i) => Math.min(sizes, len - i * sizes)) : [...sizes];
  if (parts.reduce((s, v) => s + v, 0) !== len) throw new ShapeError(`split: sizes [${parts}] do not add up to ${len}`);
  let o = 0;
  return parts.map((p) => {
    const t = slice(x, a, o, o + p);
    o += p;
    return t;
  });
}
export function chunk(x: Tensor, n: number, axis = 0): Tensor[] {
  return split(x, Math.ceil(x.size(axis) / n), axis);
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'i64' && index.dtype !== 'i32') throw new DTypeError(`${op}: index must be i32 or i64, got ${index.dtype}`);
}
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  checkIndex('indexSelect', index);
  sameDevice(x, index);
  if (index.ndim !== 1) throw new ShapeError(`indexSelect: index must be 1-d, got [${index.shape}]`);
  const a = normAxis(axis, x.ndim);
  const outShape = x.shape.map((d, i) => (i === a ? index.shape[0] : d));
  return wrap(x, x.backend.indexSelect(x.view, a, index.view, outShape), outShape);
}
/** torch.gather: out[i][j][k] = x[index[i][j][k]][j][k] (axis 0), index shaped like the output. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  checkIndex('gather', index);
  sameDevice(x, index);
  const a = normAxis(axis, x.ndim);
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== a && d > x.shape[i])) throw new ShapeError(`gather: index [${index.shape}] does not fit [${x.shape}]`);
  return wrap(x, x.backend.gather(x.view, a, index.view), index.shape);
}
/** Rows of `table` (V, D) for integer ids of any shape -> (...ids.shape, D). */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  if (table.ndim !== 2) throw new ShapeError(`embedding: table must be (vocab, dim), got [${table.shape}]`);
  const flat = indexSelect(table, 0, reshape(ids, [ids.numel]));
  const out = reshape(flat, [...ids.shape, table.shape[1]]);
  flat.dispose();
  return out;
}

/** Pad: `pads[i] = [before, after]` for dim i (missing leading dims are unpadded). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], mode: PadMode = 'constant', value = 0): Tensor {
  if (pads.length > x.ndim) throw new ShapeError(`pad: ${pads.length} pad pairs for a ${x.ndim}-d tensor`);
  const full: [number, number][] = x.shape.map((_, i) => {
    const p = pads[i - (x.ndim - pads.length)];
    return p ? [p[0], p[1]] : [0, 0];
  });
  for (const [b, a] of full) if (!Number.isInteger(b) || !Number.isInteger(a) || b < 0 || a < 0) throw new ShapeError(`pad: amounts must be non-negative integers, got ${JSON.stringify(pads)}`);
  if (mode === 'replicate' && x.shape.some((d, i) => d === 0 && full[i][0] + full[i][1] > 0)) throw new ShapeError('pad: replicate padding of an empty dim');
  const outShape = x.shape.map((d, i) => d + full[i][0] + full[i][1]);
  return wrap(x, x.backend.pad(x.view, full, mode, value, outShape), outShape);
}

/**
 * The one in-place op: copy `src` into the box of `dst` starting at `starts` (one offset per dim) and return
 * `dst`. Every view sharing dst's storage sees the change. Meant for assembling a large result piece by
 * piece (tiled decoding) without holding all pieces at once.
 */
export function writeRegion(dst: Tensor, src: Tensor, starts: readonly number[]): Tensor {
  sameDevice(dst, src);
  sameDType('writeRegion', dst, src);
  if (src.ndim !== dst.ndim || starts.length !== dst.ndim) throw new ShapeError(`writeRegion: src [${src.shape}], dst [${dst.shape}] and starts [${starts}] must have the same rank`);
  for (let i = 0; i < dst.ndim; i++) {
    const s = starts[i];
    if (!Number.isInteger(s) || s < 0 || s + src.shape[i] > dst.shape[i]) throw new ShapeError(`writeRegion: src [${src.shape}] at [${starts}] does not fit in dst [${dst.shape}]`);
  }
  if (src.numel > 0) dst.backend.writeRegion(dst.view, src.view, starts);
  return dst;
}

// ------------------------------------------------------------------ elementwise

function unary(op: UnaryOp, x: Tensor): Tensor {
  needFloat(op, x);
  return wrap(x, x.backend.unary(op, x.view), x.shape);
}
export const neg = (x: Tensor) => unary('neg', x);
export const abs = (x: Tensor) => unary('abs', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const square = (x: Tensor) => unary('square', x);
export const reciprocal = (x: Tensor) => unary('recip', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const silu = (x: Tensor) => unary('silu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const relu = (x: Tensor) => unary('relu', x);
export const quickGelu = (x: Tensor) => unary('quick_gelu', x);
/** GELU: exact (erf) by default, or the tanh approximation. */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') => unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  sameDevice(a, b);
  sameDType(op, a, b);
  const out = broadcastShapes(a.shape, b.shape);
  return wrap(a, a.backend.binary(op, a.view, b.view, out), out);
}
export function add(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1, b) : binary('add', a, b);
}
export function sub(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1, -b) : binary('sub', a, b);
}
export function mul(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, b, 0) : binary('mul', a, b);
}
export function div(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? affine(a, 1 / b, 0) : binary('div', a, b);
}
export function maximum(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? clamp(a, b, Infinity) : binary('max', a, b);
}
export function minimum(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === 'number' ? clamp(a, -Infinity, b) : binary('min', a, b);
}
export function pow(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b !== 'number') return binary('pow', a, b);
  needFloat('pow', a);
  return wrap(a, a.backend.powScalar(a.view, b), a.shape);
}
/** x * mul + add in one pass. */
export function affine(x: Tensor, mulBy: number, addTo: number): Tensor {
  needFloat('affine', x);
  return wrap(x, x.backend.affine(x.view, mulBy, addTo), x.shape);
}
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  return wrap(x, x.backend.clamp(x.view, lo, hi), x.shape);
}
function compare(op: CompareOp, a: Tensor, b: Tensor | number): Tensor {
  const bt = typeof b === 'number' ? full([], b, { dtype: a.dtype, device: a.device }) : b;
  sameDevice(a, bt);
  sameDType(op, a, bt);
  const out = broadcastShapes(a.shape, bt.shape);
  const r = wrap(a, a.backend.compare(op, a.view, bt.view, out), out);
  if (bt !== b) bt.dispose();
  return r;
}
export const eq = (a: Tensor, b: Tensor | number) => compare('eq', a, b);
export const ne = (a: Tensor, b: Tensor | number) => compare('ne', a, b);
export const lt = (a: Tensor, b: Tensor | number) => compare('lt', a, b);
export const le = (a: Tensor, b: Tensor | number) => compare('le', a, b);
export const gt = (a: Tensor, b: Tensor | number) => compare('gt', a, b);
export const ge = (a: Tensor, b: Tensor | number) => compare('ge', a, b);
/** cond ? a : b, broadcast. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (cond.dtype !== 'bool') throw new DTypeError(`where: condition must be bool, got ${cond.dtype}`);
  sameDevice(cond, a, b);
  sameDType('where', a, b);
  const out = broadcastShapes(cond.shape, a.shape, b.shape);
  return wrap(a, a.backend.where(cond.view, a.view, b.view, out), out);
}

// ------------------------------------------------------------------ reductions and norms

function reduce(op: ReduceOp, x: Tensor, axis: number, keepdim: boolean): Tensor {
  const a = normAxis(axis, x.ndim);
  const shape = x.shape.filter((_, i) => i !== a);
  const r = wrap(x, x.backend.reduce(op, x.view, a), shape);
  if (!keepdim) return r;
  const k = unsqueeze(r, a);
  r.dispose();
  return k;
}
export const sum = (x: Tensor, axis: number, keepdim = false) => reduce('sum', x, axis, keepdim);
export const mean = (x: Tensor, axis: number, keepdim = false) => reduce('mean', x, axis, keepdim);
export const max = (x: Tensor, axis: number, keepdim = false) => reduce('max', x, axis, keepdim);
export const min = (x: Tensor, axis: number, keepdim = false) => reduce('min', x, axis, keepdim);
/** Index of the first maximum along an axis, as i64. */
export const argmax = (x: Tensor, axis: number, keepdim = false) => reduce('argmax', x, axis, keepdim);
export function variance(x: Tensor, axis: number, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  needFloat('variance', x);
  const a = normAxis(axis, x.ndim);
  const shape = x.shape.filter((_, i) => i !== a);
  const r = wrap(x, x.backend.variance(x.view, a, opts.correction ?? 1), shape);
  if (!opts.keepdim) return r;
  const k = unsqueeze(r, a);
  r.dispose();
  return k;
}
/** Sum of all elements (f32 result, host number). */
export function sumAll(x: Tensor): number {
  const f = reshape(x, [x.numel]);
  const s = sum(f, 0);
  const v = s.item();
  f.dispose();
  s.dispose();
  return v;
}

export function softmax(x: Tensor, axis = -1): Tensor {
  needFloat('softmax', x);
  const a = normAxis(axis, x.ndim);
  if (a === x.ndim - 1) return wrap(x, x.backend.softmax(x.view), x.shape);
  const moved = transpose(x, a, -1);
  const s = softmax(moved, -1);
  const back = transpose(s, a, -1);
  moved.dispose();
  s.dispose();
  return back;
}

function checkParam(op: string, x: Tensor, p: Tensor | null | undefined, size: number, what: string): void {
  if (!p) return;
  sameDevice(x, p);
  if (p.numel !== size) throw new ShapeError(`${op}: ${what} has ${p.numel} elements, expected ${size}`);
  if (p.dtype !== x.dtype) throw new DTypeError(`${op}: ${what} is ${p.dtype} but the input is ${x.dtype}`);
}
/** Layer norm over the last dim (affine when weight/bias are given). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  needFloat('layerNorm', x);
  const d = x.shape[x.ndim - 1];
  checkParam('layerNorm', x, weight, d, 'weight');
  checkParam('layerNorm', x, bias, d, 'bias');
  return wrap(x, x.backend.layerNorm(x.view, weight?.view ?? null, bias?.view ?? null, eps), x.shape);
}
/** RMS norm over the last dim: x * rsqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  needFloat('rmsNorm', x);
  checkParam('rmsNorm', x, weight, x.shape[x.ndim - 1], 'weight');
  return wrap(x, x.backend.rmsNorm(x.view, weight?.view ?? null, eps), x.shape);
}
/** Group norm of x (N, C, ...). */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  needFloat('groupNorm', x);
  if (x.ndim < 2) throw new ShapeError(`groupNorm needs (N, C, ...), got [${x.shape}]`);
  const c = x.shape[1];
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) throw new ShapeError(`groupNorm: ${c} channels do not split into ${groups} groups`);
  checkParam('groupNorm', x, weight, c, 'weight');
  checkParam('groupNorm', x, bias, c, 'bias');
  return wrap(x, x.backend.groupNorm(x.view, groups, weight?.view ?? null, bias?.view ?? null, eps), x.shape);
}

// ------------------------------------------------------------------ linear algebra and attention

/** Batched matrix product with broadcast batch dims; `transB` reads b as (..., N, K). */
export function matmul(a: Tensor, b: Tensor, opts: { transB?: boolean } = {}): Tensor {
  sameDevice(a, b);
  sameDType('matmul', a, b);
  needFloat('matmul', a);
  if (a.ndim < 2 || b.ndim < 2) throw new ShapeError(`matmul needs >= 2-d operands, got [${a.shape}] and [${b.shape}]`);
  const [m, k] = a.shape.slice(-2);
  const tb = !!opts.transB;
  const kb = tb ? b.shape[b.ndim - 1] : b.shape[b.ndim - 2];
  const n = tb ? b.shape[b.ndim - 2] : b.shape[b.ndim - 1];
  if (k !== kb) throw new ShapeError(`matmul: inner dims differ: [${a.shape}] @ [${b.shape}]${tb ? '^T' : ''}`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return wrap(a, a.backend.matmul(a.view, b.view, tb, batch), [...batch, m, n]);
}
/** x (..., in) @ weight (out, in)^T + bias (out), the nn.Linear convention. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  sameDevice(x, weight);
  sameDType('linear', x, weight);
  needFloat('linear', x);
  if (weight.ndim !== 2) throw new ShapeError(`linear: weight must be (out, in), got [${weight.shape}]`);
  if (x.shape[x.ndim - 1] !== weight.shape[1]) throw new ShapeError(`linear: input [${x.shape}] does not match weight [${weight.shape}] (in = ${weight.shape[1]})`);
  if (bias) checkParam('linear', x, bias, weight.shape[0], 'bias');
  return wrap(x, x.backend.linear(x.view, weight.view, bias?.view ?? null), [...x.shape.slice(0, -1), weight.shape[0]]);
}

export interface AttentionOptions {
  /** Bool, broadcastable to (B, H, Lq, Lk): true = the query may attend to the key. */
  mask?: Tensor | null;
  causal?: boolean;
  /** Default 1/sqrt(head dim). */
  scale?: number;
}
/**
 * Scaled dot-product attention on (B, H, L, D) tensors. A query row whose keys are all masked
 * gets zeros (torch gives NaN there).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  sameDevice(q, k, v);
  sameDType('attention', q, k, v);
  needFloat('attention', q);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new ShapeError(`attention needs (B, H, L, D) tensors, got [${q.shape}], [${k.shape}], [${v.shape}]`);
  const [B, H, Lq, D] = q.shape;
  const Lk = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) throw new ShapeError(`attention: key [${k.shape}] does not match query [${q.shape}]`);
  if (v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== Lk) throw new ShapeError(`attention: value [${v.shape}] does not match key [${k.shape}]`);
  if (opts.mask) {
    if (opts.mask.dtype !== 'bool') throw new DTypeError(`attention mask must be bool, got ${opts.mask.dtype}`);
    sameDevice(q, opts.mask);
    const ms = broadcastShapes(opts.mask.shape, [B, H, Lq, Lk]);
    if (!sameShape(ms, [B, H, Lq, Lk])) throw new ShapeError(`attention mask [${opts.mask.shape}] does not broadcast to [${B},${H},${Lq},${Lk}]`);
  }
  const storage = q.backend.attention(q.view, k.view, v.view, { mask: opts.mask?.view, causal: !!opts.causal, scale: opts.scale ?? 1 / Math.sqrt(D) });
  return wrap(q, storage, [B, H, Lq, v.shape[3]]);
}

/**
 * Scaled dot-product attention on (B, L, H, D) tensors (the DiT's projection layout), output (B, L, H, Dv). Same
 * semantics as scaledDotProductAttention; a backend that reads this layout in place (the Hopper kernel) skips the
 * four transposes, the others get them here.
 */
export function scaledDotProductAttentionBLHD(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new ShapeError(`attention needs (B, L, H, D) tensors, got [${q.shape}], [${k.shape}], [${v.shape}]`);
  const [B, Lq, H, D] = q.shape;
  const native = q.backend.attentionBLHD;
  if (native && q.device === k.device && q.device === v.device && q.dtype === k.dtype && q.dtype === v.dtype && isFloat(q.dtype) &&
      k.shape[0] === B && k.shape[2] === H && k.shape[3] === D && v.shape[0] === B && v.shape[1] === k.shape[1] && v.shape[2] === H &&
      (!opts.mask || (opts.mask.dtype === 'bool' && opts.mask.device === q.device && sameShape(broadcastShapes(opts.mask.shape, [B, H, Lq, k.shape[1]]), [B, H, Lq, k.shape[1]])))) {
    const s = native.call(q.backend, q.view, k.view, v.view, { mask: opts.mask?.view, causal: !!opts.causal, scale: opts.scale ?? 1 / Math.sqrt(D) });
    if (s) return wrap(q, s, [B, Lq, H, v.shape[3]]);
  }
  const [qt, kt, vt] = [q, k, v].map((t) => transpose(t, 1, 2));
  const o = scaledDotProductAttention(qt, kt, vt, opts);
  qt.dispose(); kt.dispose(); vt.dispose();
  const r = transpose(o, 1, 2);
  o.dispose();
  return r;
}

const triple = (v: number | readonly number[]) => (typeof v === 'number' ? [v, v, v] : [...v]);
/** 3-d convolution, x (N, Cin, T, H, W), weight (Cout, Cin, kT, kH, kW), zero padding. */
export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: { stride?: number | readonly number[]; padding?: number | readonly number[] } = {}): Tensor {
  sameDevice(x, weight);
  sameDType('conv3d', x, weight);
  needFloat('conv3d', x);
  if (x.ndim !== 5 || weight.ndim !== 5) throw new ShapeError(`conv3d needs x (N,C,T,H,W) and weight (Co,Ci,kT,kH,kW), got [${x.shape}] and [${weight.shape}]`);
  if (x.shape[1] !== weight.shape[1]) throw new ShapeError(`conv3d: input has ${x.shape[1]} channels, weight expects ${weight.shape[1]}`);
  if (bias) checkParam('conv3d', x, bias, weight.shape[0], 'bias');
  const stride = triple(opts.stride ?? 1), padding = triple(opts.padding ?? 0);
  const outShape = [x.shape[0], weight.shape[0], ...[0, 1, 2].map((i) => Math.floor((x.shape[2 + i] + 2 * padding[i] - weight.shape[2 + i]) / stride[i]) + 1)];
  if (outShape.some((d) => d <= 0)) throw new ShapeError(`conv3d: input [${x.shape}] is smaller than kernel [${weight.shape}] with padding [${padding}]`);
  return wrap(x, x.backend.conv3d(x.view, weight.view, bias?.view ?? null, stride, padding, outShape), outShape);
}
/** 2-d convolution via conv3d with a unit time axis. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: { stride?: number | readonly number[]; padding?: number | readonly number[] } = {}): Tensor {
  const pair = (v: number | readonly number[] | undefined, d: number) => (v === undefined ? [1, d, d] : typeof v === 'number' ? [1, v, v] : [1, ...v]);
  const x5 = unsqueeze(x, 2), w5 = unsqueeze(weight, 2);
  const o = conv3d(x5, w5, bias, { stride: pair(opts.stride, 1), padding: [0, ...(pair(opts.padding, 0).slice(1))] });
  const r = squeeze(o, 2);
  x5.dispose(); w5.dispose(); o.dispose();
  return r;
}
/** Nearest-neighbour upsampling of the trailing spatial dims by integer factors (one per spatial dim). */
export function upsampleNearest(x: Tensor, scale: readonly number[]): Tensor {
  if (scale.length > x.ndim - 2) throw new ShapeError(`upsampleNearest: ${scale.length} factors for [${x.shape}]`);
  for (const s of scale) if (!Number.isInteger(s) || s < 1) throw new ShapeError(`upsampleNearest: factors must be positive integers, got [${scale}]`);
  const full = [...new Array(x.ndim - scale.length).fill(1), ...scale];
  const outShape = x.shape.map((d, i) => d * full[i]);
  return wrap(x, x.backend.upsampleNearest(x.view, full, outShape), outShape);
}

/** Rotary embedding: x * cos + rotate(x) * sin with cos/sin broadcastable to x (last dim = head dim). */
export function rope(x: Tensor, cosT: Tensor, sinT: Tensor, mode: RopeMode): Tensor {
  sameDevice(x, cosT, sinT);
  sameDType('rope', x, cosT, sinT);
  if (!sameShape(cosT.shape, sinT.shape)) throw new ShapeError(`rope: cos [${cosT.shape}] and sin [${sinT.shape}] differ`);
  if (!sameShape(broadcastShapes(x.shape, cosT.shape), x.shape)) throw new ShapeError(`rope: cos/sin [${cosT.shape}] do not broadcast to x [${x.shape}]`);
  if (x.shape[x.ndim - 1] % 2) throw new ShapeError(`rope: head dim ${x.shape[x.ndim - 1]} must be even`);
  return wrap(x, x.backend.rope(x.view, cosT.view, sinT.view, mode, cosT.shape), x.shape);
}

// ------------------------------------------------------------------ patchify

/**
 * (B, C, T*pt, H*ph, W*pw) -> (B, T*H*W, C*pt*ph*pw): tokens in (t, h, w) order, features in
 * (c, pt, ph, pw) order, i.e. the layout a Conv3d with kernel = stride = patch multiplies.
 */
export function patchify(x: Tensor, patch: readonly [number, number, number]): Tensor {
  if (x.ndim !== 5) throw new ShapeError(`patchify needs (B,C,T,H,W), got [${x.shape}]`);
  const [B, C, T, H, W] = x.shape;
  const [pt, ph, pw] = patch;
  if (T % pt || H % ph || W % pw) throw new ShapeError(`patchify: [${x.shape}] is not divisible by patch [${patch}]`);
  const r = reshape(x, [B, C, T / pt, pt, H / ph, ph, W / pw, pw]);
  const p = permute(r, [0, 2, 4, 6, 1, 3, 5, 7]);
  const out = reshape(p, [B, (T / pt) * (H / ph) * (W / pw), C * pt * ph * pw]);
  r.dispose();
  p.dispose();
  return out;
}
/** Inverse of patchify: (B, T*H*W, C*pt*ph*pw) -> (B, C, T*pt, H*ph, W*pw). */
export function unpatchify(x: Tensor, grid: readonly [number, number, number], patch: readonly [number, number, number]): Tensor {
  const [T, H, W] = grid;
  const [pt, ph, pw] = patch;
  const B = x.shape[0];
  const C = x.shape[2] / (pt * ph * pw);
  if (x.ndim !== 3 || x.shape[1] !== T * H * W || !Number.isInteger(C)) throw new ShapeError(`unpatchify: [${x.shape}] does not match grid [${grid}] and patch [${patch}]`);
  const r = reshape(x, [B, T, H, W, C, pt, ph, pw]);
  const p = permute(r, [0, 4, 1, 5, 2, 6, 3, 7]);
  const out = reshape(p, [B, C, T * pt, H * ph, W * pw]);
  r.dispose();
  p.dispose();
  return out;
}
