import type { AttentionParams, Backend, BinaryOp, CompareOp, PadMode, ReduceOp, RopeMode, Storage, UnaryOp, View } from '../backend.js';
import { allocHost, BYTES_PER_ELEMENT, type DType, convertHalfBits, f32ToHost, type HostArray, hostToF32, hostToF64, isFloat } from '../dtype.js';
import { broadcastStrides, stridesOf } from '../shape.js';
import { weight8DecodeTable } from '../quant8-codec.js';
import { conv3dF32 } from './conv3d.js';
import { BINARY, COMPARE, dot, UNARY } from './math.js';

interface CpuStorage extends Storage {
  readonly handle: HostArray;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const make = (dtype: DType, data: HostArray): CpuStorage => ({ device: 'cpu', dtype, numel: data.length, handle: data });

/** The raw elements of a view (no copy). */
function raw(v: View): HostArray {
  const h = (v.storage as CpuStorage).handle;
  const n = numel(v.shape);
  return v.offset === 0 && n === h.length ? h : h.subarray(v.offset, v.offset + n);
}
/** Values of a view as f32 (no copy for f32). */
const f32 = (v: View): Float32Array => hostToF32(v.dtype, raw(v));
/** Values of any view as exact JS numbers (for integer dtypes). */
const nums = (v: View): Float32Array | Float64Array => (isFloat(v.dtype) ? f32(v) : hostToF64(v.dtype, raw(v)));
const store = (dtype: DType, values: Float32Array | Float64Array): CpuStorage => make(dtype, f32ToHost(dtype, values));

/** Per-output-element offsets into an input broadcast to outShape. */
function broadcastOffsets(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = numel(outShape);
  const strides = broadcastStrides(shape, outShape);
  const nd = outShape.length;
  const offs = new Int32Array(n);
  const idx = new Array(nd).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    offs[i] = off;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < outShape[d]) break;
      off -= strides[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return offs;
}

/** Calls fn(outIndex, aIndex, bIndex) for every output element, with fast paths for equal shapes and scalars. */
function zipBroadcast(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[], fn: (o: number, a: number, b: number) => void): void {
  const n = numel(outShape);
  const na = numel(aShape), nb = numel(bShape);
  if (na === n && nb === n) for (let i = 0; i < n; i++) fn(i, i, i);
  else if (na === n && nb === 1) for (let i = 0; i < n; i++) fn(i, i, 0);
  else if (na === 1 && nb === n) for (let i = 0; i < n; i++) fn(i, 0, i);
  else {
    const ao = na === n ? null : broadcastOffsets(aShape, outShape);
    const bo = nb === n ? null : broadcastOffsets(bShape, outShape);
    for (let i = 0; i < n; i++) fn(i, ao ? ao[i] : i, bo ? bo[i] : i);
  }
}

/** [outer, axis, inner] decomposition of a shape around one axis. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis], numel(shape.slice(axis + 1))];
}

/** The CPU backend: plain TypeScript over typed arrays, f32 storage math with double accumulators. */
export class CpuBackend implements Backend {
  readonly device = 'cpu' as const;

  zeros(n: number, dtype: DType): Storage {
    return make(dtype, allocHost(dtype, n));
  }
  fill(n: number, dtype: DType, value: number): Storage {
    const h = allocHost(dtype, n);
    if (h instanceof BigInt64Array) h.fill(BigInt(Math.trunc(value)));
    else h.fill(f32ToHost(dtype, Float64Array.of(value))[0] as number);
    return make(dtype, h);
  }
  upload(data: HostArray, dtype: DType): Storage {
    return make(dtype, data);
  }
  download(v: View): HostArray {
    return raw(v).slice();
  }
  release(): void {
    // host memory is reclaimed by the garbage collector once nothing references it
  }
  bytesOf(s: Storage): number {
    return s.numel * BYTES_PER_ELEMENT[s.dtype];
  }

  copy(v: View): Storage {
    return make(v.dtype, raw(v).slice());
  }
  cast(v: View, to: DType): Storage {
    if (to === 'i64' && !isFloat(v.dtype)) return make(to, BigInt64Array.from(hostToF64(v.dtype, raw(v)), (x) => BigInt(x)));
    // between the half types by table, without an f32 copy
    if ((v.dtype === 'f16' || v.dtype === 'bf16') && (to === 'f16' || to === 'bf16') && v.dtype !== to) return make(to, convertHalfBits(raw(v) as Uint16Array, v.dtype, to));
    return store(to, nums(v));
  }
  unary(op: UnaryOp, v: View): Storage {
    const x = f32(v);
    const f = UNARY[op];
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
    return store(v.dtype, out);
  }
  binary(op: BinaryOp, a: View, b: View, outShape: readonly number[]): Storage {
    const x = nums(a), y = nums(b);
    const f = BINARY[op];
    const out = isFloat(a.dtype) ? new Float32Array(numel(outShape)) : new Float64Array(numel(outShape));
    if (op === 'add') zipBroadcast(a.shape, b.shape, outShape, (o, i, j) => (out[o] = x[i] + y[j]));
    else if (op === 'mul') zipBroadcast(a.shape, b.shape, outShape, (o, i, j) => (out[o] = x[i] * y[j]));
    else zipBroadcast(a.shape, b.shape, outShape, (o, i, j) => (out[o] = f(x[i], y[j])));
    if (!isFloat(a.dtype) && op === 'div') for (let i = 0; i < out.length; i++) out[i] = Math.trunc(out[i]);
    return store(a.dtype, out);
  }
  compare(op: CompareOp, a: View, b: View, outShape: readonly number[]): Storage {
    const x = nums(a), y = nums(b);
    const f = COMPARE[op];
    const out = new Uint8Array(numel(outShape));
    zipBroadcast(a.shape, b.shape, outShape, (o, i, j) => (out[o] = f(x[i], y[j]) ? 1 : 0));
    return make('bool', out);
  }
  where(cond: View, a: View, b: View, outShape: readonly number[]): Storage {
    const c = raw(cond) as Uint8Array;
    const x = raw(a), y = raw(b);
    const n = numel(outShape);
    const co = broadcastOffsets(cond.shape, outShape), ao = broadcastOffsets(a.shape, outShape), bo = broadcastOffsets(b.shape, outShape);
    const out = allocHost(a.dtype, n) as unknown as { [i: number]: number | bigint };
    for (let i = 0; i < n; i++) out[i] = c[co[i]] ? x[ao[i]] : y[bo[i]];
    return make(a.dtype, out as unknown as HostArray);
  }
  affine(v: View, m: number, a: number): Storage {
    const x = f32(v);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] * m + a;
    return store(v.dtype, out);
  }
  powScalar(v: View, p: number): Storage {
    const x = f32(v);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = p === 2 ? x[i] * x[i] : Math.pow(x[i], p);
    return store(v.dtype, out);
  }
  clamp(v: View, lo: number, hi: number): Storage {
    const x = nums(v);
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    return store(v.dtype, out);
  }
  reduce(op: ReduceOp, v: View, axis: number): Storage {
    const x = nums(v);
    const [outer, len, inner] = around(v.shape, axis);
    const out = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let acc = op === 'max' || op === 'argmax' ? -Infinity : op === 'min' ? Infinity : 0;
        let arg = 0;
        for (let j = 0; j < len; j++) {
          const val = x[base + j * inner];
          if (op === 'sum' || op === 'mean') acc += val;
          else if (op === 'max' || op === 'argmax') {
            if (val > acc || Number.isNaN(val)) {
              acc = val;
              arg = j;
            }
          } else if (val < acc || Number.isNaN(val)) acc = val;
        }
        out[o * inner + i] = op === 'mean' ? acc / len : op === 'argmax' ? arg : acc;
      }
    }
    if (op === 'argmax') return make('i64', BigInt64Array.from(out, (d) => BigInt(d)));
    return store(v.dtype, out);
  }
  variance(v: View, axis: number, correction: number): Storage {
    const x = f32(v);
    const [outer, len, inner] = around(v.shape, axis);
    const out = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let m = 0;
        for (let j = 0; j < len; j++) m += x[base + j * inner];
        m /= len;
        let s = 0;
        for (let j = 0; j < len; j++) s += (x[base + j * inner] - m) ** 2;
        out[o * inner + i] = s / Math.max(len - correction, 0);
      }
    return store(v.dtype, out);
  }
  softmax(v: View): Storage {
    const x = f32(v);
    const d = v.shape[v.shape.length - 1];
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length; r += d) {
      let m = -Infinity;
      for (let j = 0; j < d; j++) if (x[r + j] > m) m = x[r + j];
      let s = 0;
      for (let j = 0; j < d; j++) s += Math.exp(x[r + j] - m);
      for (let j = 0; j < d; j++) out[r + j] = Math.exp(x[r + j] - m) / s;
    }
    return store(v.dtype, out);
  }
  layerNorm(v: View, weight: View | null, bias: View | null, eps: number): Storage {
    const x = f32(v);
    const d = v.shape[v.shape.length - 1];
    const w = weight && f32(weight), b = bias && f32(bias);
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length; r += d) {
      let m = 0;
      for (let j = 0; j < d; j++) m += x[r + j];
      m /= d;
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[r + j] - m) ** 2;
      const inv = 1 / Math.sqrt(s / d + eps);
      for (let j = 0; j < d; j++) out[r + j] = (x[r + j] - m) * inv * (w ? w[j] : 1) + (b ? b[j] : 0);
    }
    return store(v.dtype, out);
  }
  rmsNorm(v: View, weight: View | null, eps: number): Storage {
    const x = f32(v);
    const d = v.shape[v.shape.length - 1];
    const w = weight && f32(weight);
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length; r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[r + j] * x[r + j];
      const inv = 1 / Math.sqrt(s / d + eps);
      for (let j = 0; j < d; j++) out[r + j] = x[r + j] * inv * (w ? w[j] : 1);
    }
    return store(v.dtype, out);
  }
  groupNorm(v: View, groups: number, weight: View | null, bias: View | null, eps: number): Storage {
    const x = f32(v);
    const [n, c] = v.shape;
    const spatial = numel(v.shape.slice(2));
    const cpg = c / groups;
    const w = weight && f32(weight), b = bias && f32(bias);
    const out = new Float32Array(x.length);
    const len = cpg * spatial;
    for (let i = 0; i < n; i++)
      for (let g = 0; g < groups; g++) {
        const base = (i * c + g * cpg) * spatial;
        let m = 0;
        for (let j = 0; j < len; j++) m += x[base + j];
        m /= len;
        let s = 0;
        for (let j = 0; j < len; j++) s += (x[base + j] - m) ** 2;
        const inv = 1 / Math.sqrt(s / len + eps);
        for (let ch = 0; ch < cpg; ch++) {
          const cc = g * cpg + ch;
          const sc = w ? w[cc] : 1, sh = b ? b[cc] : 0;
          const o = base + ch * spatial;
          for (let j = 0; j < spatial; j++) out[o + j] = (x[o + j] - m) * inv * sc + sh;
        }
      }
    return store(v.dtype, out);
  }
  matmul(a: View, b: View, transB: boolean, outBatch: readonly number[]): Storage {
    const x = f32(a), y = f32(b);
    const [m, k] = a.shape.slice(-2);
    const n = transB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const nb = numel(outBatch);
    const aOff = broadcastOffsets(a.shape.slice(0, -2), outBatch), bOff = broadcastOffsets(b.shape.slice(0, -2), outBatch);
    const out = new Float32Array(nb * m * n);
    const bt = new Float32Array(n * k);
    for (let p = 0; p < nb; p++) {
      const ao = aOff[p] * m * k, bo = bOff[p] * k * n;
      let bmat = y, bbase = bo;
      if (!transB) {
        for (let kk = 0; kk < k; kk++) for (let j = 0; j < n; j++) bt[j * k + kk] = y[bo + kk * n + j];
        bmat = bt;
        bbase = 0;
      }
      const oo = p * m * n;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[oo + i * n + j] = dot(x, ao + i * k, bmat, bbase + j * k, k);
    }
    return store(a.dtype, out);
  }
  linear(xv: View, wv: View, biasv: View | null): Storage {
    const x = f32(xv), w = f32(wv), bias = biasv && f32(biasv);
    const [n, k] = wv.shape;
    const rows = x.length / k;
    const out = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) out[r * n + j] = dot(x, r * k, w, j * k, k) + (bias ? bias[j] : 0);
    return store(xv.dtype, out);
  }
  attention(qv: View, kv: View, vv: View, p: AttentionParams): Storage {
    const q = f32(qv), k = f32(kv), v = f32(vv);
    const [B, H, Lq, D] = qv.shape;
    const Lk = kv.shape[2], Dv = vv.shape[3];
    const mask = p.mask ? (raw(p.mask) as Uint8Array) : null;
    const mOff = p.mask ? broadcastOffsets(p.mask.shape, [B, H, Lq, Lk]) : null;
    const out = new Float32Array(B * H * Lq * Dv);
    const scores = new Float64Array(Lk);
    const acc = new Float64Array(Dv);
    for (let bh = 0; bh < B * H; bh++) {
      const qb = bh * Lq * D, kb = bh * Lk * D, vb = bh * Lk * Dv;
      for (let i = 0; i < Lq; i++) {
        let mx = -Infinity;
        for (let j = 0; j < Lk; j++) {
          const allowed = (!p.causal || j <= i + (Lk - Lq)) && (!mask || mask[mOff![(bh * Lq + i) * Lk + j]] !== 0);
          scores[j] = allowed ? dot(q, qb + i * D, k, kb + j * D, D) * p.scale : -Infinity;
          if (scores[j] > mx) mx = scores[j];
        }
        const o = (bh * Lq + i) * Dv;
        if (mx === -Infinity) continue; // every key masked: zeros
        let s = 0;
        acc.fill(0);
        for (let j = 0; j < Lk; j++) {
          if (scores[j] === -Infinity) continue;
          const e = Math.exp(scores[j] - mx);
          s += e;
          const vo = vb + j * Dv;
          for (let d = 0; d < Dv; d++) acc[d] += e * v[vo + d];
        }
        for (let d = 0; d < Dv; d++) out[o + d] = acc[d] / s;
      }
    }
    return store(qv.dtype, out);
  }
  conv3d(xv: View, wv: View, biasv: View | null, stride: readonly number[], padding: readonly number[], outShape: readonly number[]): Storage {
    return store(xv.dtype, conv3dF32(f32(xv), xv.shape, f32(wv), wv.shape, biasv && f32(biasv), stride, padding, outShape));
  }
  upsampleNearest(v: View, scale: readonly number[], outShape: readonly number[]): Storage {
    const x = raw(v);
    const n = numel(outShape);
    const out = allocHost(v.dtype, n) as unknown as { [i: number]: number | bigint };
    const inStrides = stridesOf(v.shape);
    const nd = outShape.length;
    const idx = new Array(nd).fill(0);
    for (let i = 0; i < n; i++) {
      let off = 0;
      for (let d = 0; d < nd; d++) off += Math.floor(idx[d] / scale[d]) * inStrides[d];
      out[i] = x[off];
      for (let d = nd - 1; d >= 0 && ++idx[d] === outShape[d]; d--) idx[d] = 0;
    }
    return make(v.dtype, out as unknown as HostArray);
  }
  permute(v: View, dims: readonly number[], outShape: readonly number[]): Storage {
    const x = raw(v);
    const inStrides = stridesOf(v.shape);
    const st = dims.map((d) => inStrides[d]);
    const n = numel(outShape);
    const out = allocHost(v.dtype, n) as unknown as { [i: number]: number | bigint };
    const nd = outShape.length;
    const last = nd - 1, lastLen = outShape[last], lastStride = st[last];
    const idx = new Array(nd).fill(0);
    let off = 0;
    for (let i = 0; i < n; i += lastLen) {
      for (let j = 0; j < lastLen; j++) out[i + j] = x[off + j * lastStride];
      for (let d = last - 1; d >= 0; d--) {
        idx[d]++;
        off += st[d];
        if (idx[d] < outShape[d]) break;
        off -= st[d] * outShape[d];
        idx[d] = 0;
      }
    }
    return make(v.dtype, out as unknown as HostArray);
  }
  concat(vs: readonly View[], axis: number, outShape: readonly number[]): Storage {
    const out = allocHost(vs[0].dtype, numel(outShape));
    const [outer, , inner] = around(outShape, axis);
    const rowOut = outShape[axis] * inner;
    let col = 0;
    for (const v of vs) {
      const x = raw(v);
      const rowIn = v.shape[axis] * inner;
      for (let o = 0; o < outer; o++) (out as Float32Array).set((x as Float32Array).subarray(o * rowIn, (o + 1) * rowIn), o * rowOut + col);
      col += rowIn;
    }
    return make(vs[0].dtype, out);
  }
  slice(v: View, axis: number, start: number, step: number, outShape: readonly number[]): Storage {
    const x = raw(v) as Float32Array;
    const [outer, len, inner] = around(v.shape, axis);
    const n = outShape[axis];
    const out = allocHost(v.dtype, numel(outShape)) as Float32Array;
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < n; j++) {
        const src = (o * len + start + j * step) * inner;
        out.set(x.subarray(src, src + inner), (o * n + j) * inner);
      }
    return make(v.dtype, out);
  }
  indexSelect(v: View, axis: number, index: View, outShape: readonly number[]): Storage {
    const x = raw(v) as Float32Array;
    const idx = hostToF64(index.dtype, raw(index));
    const [outer, len, inner] = around(v.shape, axis);
    const out = allocHost(v.dtype, numel(outShape)) as Float32Array;
    for (const i of idx) if (i < -len || i >= len || !Number.isInteger(i)) throw new RangeError(`index ${i} out of range for dim of size ${len}`);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < idx.length; j++) {
        const src = (o * len + (idx[j] < 0 ? idx[j] + len : idx[j])) * inner;
        out.set(x.subarray(src, src + inner), (o * idx.length + j) * inner);
      }
    return make(v.dtype, out);
  }
  gather(v: View, axis: number, index: View): Storage {
    const x = raw(v) as unknown as { [i: number]: number | bigint };
    const idx = hostToF64(index.dtype, raw(index));
    const n = idx.length;
    const out = allocHost(v.dtype, n) as unknown as { [i: number]: number | bigint };
    const inStrides = stridesOf(v.shape);
    const nd = index.shape.length;
    const pos = new Array(nd).fill(0);
    const len = v.shape[axis];
    for (let i = 0; i < n; i++) {
      let off = 0;
      for (let d = 0; d < nd; d++) {
        let c = d === axis ? idx[i] : pos[d];
        if (d === axis) {
          if (c < -len || c >= len) throw new RangeError(`gather index ${c} out of range for dim of size ${len}`);
          if (c < 0) c += len;
        }
        off += c * inStrides[d];
      }
      out[i] = x[off];
      for (let d = nd - 1; d >= 0 && ++pos[d] === index.shape[d]; d--) pos[d] = 0;
    }
    return make(v.dtype, out as unknown as HostArray);
  }
  pad(v: View, pads: readonly (readonly [number, number])[], mode: PadMode, value: number, outShape: readonly number[]): Storage {
    // Row by row: each output row (all dims but the last) maps to one source row, or to none (constant padding).
    const x = raw(v) as Float32Array;
    const n = numel(outShape);
    const out = (mode === 'constant' ? (this.fill(n, v.dtype, value) as CpuStorage).handle : allocHost(v.dtype, n)) as Float32Array;
    const nd = outShape.length;
    if (n === 0 || nd === 0) return make(v.dtype, nd === 0 ? (x.slice() as Float32Array) : out);
    const inStrides = stridesOf(v.shape);
    const rowOut = outShape[nd - 1], rowIn = v.shape[nd - 1];
    const [before, after] = pads[nd - 1];
    const rows = n / rowOut;
    const pos = new Array(nd - 1).fill(0);
    for (let r = 0; r < rows; r++) {
      let off = 0, inside = true;
      for (let d = 0; d < nd - 1; d++) {
        let c = pos[d] - pads[d][0];
        if (c < 0 || c >= v.shape[d]) {
          if (mode === 'constant') {
            inside = false;
            break;
          }
          c = c < 0 ? 0 : v.shape[d] - 1;
        }
        off += c * inStrides[d];
      }
      if (inside) {
        const o = r * rowOut;
        out.set(x.subarray(off, off + rowIn), o + before);
        if (mode === 'replicate') {
          if (before) out.fill(x[off], o, o + before);
          if (after) out.fill(x[off + rowIn - 1], o + before + rowIn, o + rowOut);
        }
      }
      for (let d = nd - 2; d >= 0 && ++pos[d] === outShape[d]; d--) pos[d] = 0;
    }
    return make(v.dtype, out);
  }
  writeRegion(dst: View, src: View, starts: readonly number[]): void {
    const d = (dst.storage as CpuStorage).handle as Float32Array;
    const x = raw(src) as Float32Array;
    const nd = src.shape.length;
    if (x.length === 0) return;
    const dStrides = stridesOf(dst.shape);
    const rowLen = src.shape[nd - 1];
    const pos = new Array(nd).fill(0);
    for (let i = 0; i < x.length; i += rowLen) {
      let off = dst.offset;
      for (let k = 0; k < nd; k++) off += (starts[k] + pos[k]) * dStrides[k];
      d.set(x.subarray(i, i + rowLen), off);
      for (let k = nd - 2; k >= 0 && ++pos[k] === src.shape[k]; k--) pos[k] = 0;
    }
  }
  dequantize8(dst: View, codes: View, scales: View, format: 'int8' | 'fp8', cols: number): void {
    const table = weight8DecodeTable(format);
    const q = raw(codes) as Uint8Array;
    const s = f32(scales);
    const vals = new Float32Array(q.length);
    // table[q] and s are f32, so the double product is exact and the Float32Array store is the one f32 rounding
    for (let i = 0, r = 0; i < q.length; i += cols, r++) for (let j = i; j < i + cols; j++) vals[j] = table[q[j]] * s[r];
    const d = (dst.storage as CpuStorage).handle as Float32Array;
    d.set(f32ToHost(dst.dtype, vals) as Float32Array, dst.offset);
  }
  rope(xv: View, cv: View, sv: View, mode: RopeMode, cosShape: readonly number[]): Storage {
    const x = f32(xv), c = f32(cv), s = f32(sv);
    const off = broadcastOffsets(cosShape, xv.shape);
    const D = xv.shape[xv.shape.length - 1];
    const half = D / 2;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const d = i % D;
      let rot: number;
      if (mode === 'interleaved') rot = d % 2 === 0 ? -x[i + 1] : x[i - 1];
      else rot = d < half ? -x[i + half] : x[i - half];
      out[i] = x[i] * c[off[i]] + rot * s[off[i]];
    }
    return store(xv.dtype, out);
  }
}
