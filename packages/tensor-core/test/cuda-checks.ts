// Every CUDA op against the CPU backend on fresh random inputs. Shared by the vitest suite (test/cuda.test.ts,
// skipped without a GPU) and the device script (tooling/device/gpu-check.ts). Half-precision checks feed both
// backends the same rounded inputs; the CPU reference computes in f32 from them. rel-L2 < limit; NaN never passes.
import * as T from '@framepack/tensor-core';
import type { DType, Tensor } from '@framepack/tensor-core';

export interface CheckResult {
  name: string;
  err: number;
  limit: number;
  pass: boolean;
}
export interface Check {
  name: string;
  run(): CheckResult;
}

// ---- random inputs (a fresh seed per process: every run draws new data)
let seed = (Date.now() ^ (process.pid << 8)) >>> 0;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return (seed + 0.5) / 4294967296;
}
export function randn(n: number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()) * scale + shift;
  return a;
}
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** rel-L2 of ours vs ref (both as f32); NaN anywhere gives NaN. */
export function relL2(ours: Float32Array, ref: Float32Array): number {
  if (ours.length !== ref.length) return NaN;
  let num = 0, den = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = ours[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

const LIMIT: Record<string, number> = { bf16: 1e-2, f16: 3e-3, f32: 1e-4 };

/** A named input: the same host values become a tensor on either backend. */
interface In {
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
  shape: number[];
  dtype: DType;
}
const f = (shape: number[], dtype: DType = 'f32', scale = 1, shift = 0): In => ({ data: randn(numel(shape), scale, shift), shape, dtype });
/** 1 + |4 + normal| (at least 1, mostly near 5): a normal shifted by 5 can draw a negative (about 1 run in 400), NaN on both sides. */
const positive = (shape: number[], dtype: DType): In => ({ data: randn(numel(shape)).map((v) => 1 + Math.abs(v + 4)), shape, dtype });
function on(x: In, device: 'cpu' | 'cuda', refF32 = false): Tensor {
  const t = T.tensor(x.data as Float32Array, x.shape, { dtype: x.dtype, device });
  if (!refF32 || !T.isFloat(x.dtype) || x.dtype === 'f32') return t;
  const c = T.cast(t, 'f32');
  t.dispose();
  return c;
}

/**
 * One check: `fn` gets the inputs as tensors on a device. CUDA runs on the given dtypes, the CPU reference on the
 * inputs upcast to f32 (exact: the values were already rounded). `limit` defaults by the output dtype; 0 = exact.
 */
function check(name: string, inputs: In[], fn: (xs: Tensor[], dev: 'cpu' | 'cuda') => Tensor, limit?: number): Check {
  return {
    name,
    run() {
      return T.tidy(() => {
        const g = fn(inputs.map((x) => on(x, 'cuda')), 'cuda');
        const c = fn(inputs.map((x) => on(x, 'cpu', true)), 'cpu');
        const ours = g.toFloat32Array(), ref = c.toFloat32Array();
        const lim = limit ?? LIMIT[g.dtype] ?? 0;
        const err = relL2(ours, ref);
        let nan = false;
        for (let i = 0; i < ours.length && !nan; i++) nan = Number.isNaN(ours[i]) && !Number.isNaN(ref[i]);
        const sameShape = g.shape.join() === c.shape.join();
        const e = nan || !sameShape ? NaN : err;
        return { name, err: e, limit: lim, pass: e <= lim };
      });
    },
  };
}

const UNARY = ['neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'reciprocal', 'sin', 'cos', 'silu', 'sigmoid', 'tanh', 'relu', 'quickGelu'] as const;
// log/sqrt/rsqrt need positive inputs; reciprocal stays away from 0 so f16 outputs cannot overflow (65504)
const POSITIVE = new Set(['log', 'sqrt', 'rsqrt', 'reciprocal']);

export function cudaChecks(): Check[] {
  const cs: Check[] = [];
  for (const dt of ['bf16', 'f16', 'f32'] as DType[]) {
    // elementwise
    for (const u of UNARY) cs.push(check(`${u} ${dt}`, [POSITIVE.has(u) ? positive([257, 33], dt) : f([257, 33], dt)], ([x]) => (T as any)[u](x)));
    cs.push(check(`gelu erf ${dt}`, [f([1000], dt)], ([x]) => T.gelu(x)));
    cs.push(check(`gelu tanh ${dt}`, [f([1000], dt)], ([x]) => T.gelu(x, 'tanh')));
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const)
      cs.push(check(`${op} broadcast ${dt}`, [f([4, 1, 5, 33], dt), f([3, 1, 33], dt, 1, op === 'div' ? 4 : 0)], ([a, b]) => (T as any)[op](a, b)));
    // vectorized paths: same shape (n % 8 == 0 and a tail), scalar, [P,1,Q] row broadcast, swapped operands
    cs.push(check(`add same shape vec ${dt}`, [f([64, 3072], dt), f([64, 3072], dt)], ([a, b]) => T.add(a, b)));
    cs.push(check(`mul same shape tail ${dt}`, [f([3, 1001], dt), f([3, 1001], dt)], ([a, b]) => T.mul(a, b)));
    cs.push(check(`sub scalar tensor ${dt}`, [f([2, 77, 40], dt), f([1], dt)], ([a, b]) => T.sub(a, b)));
    cs.push(check(`mul row broadcast ${dt}`, [f([2, 96, 3072], dt), f([2, 1, 3072], dt)], ([a, b]) => T.mul(a, b)));
    cs.push(check(`add row broadcast swapped ${dt}`, [f([1, 1, 256], dt), f([3, 50, 256], dt)], ([a, b]) => T.add(a, b)));
    cs.push(check(`div mid broadcast ${dt}`, [f([4, 6, 5, 16], dt), f([4, 1, 1, 16], dt, 1, 4)], ([a, b]) => T.div(a, b)));
    cs.push(check(`silu/affine vec ${dt}`, [f([128, 3072], dt)], ([x]) => T.affine(T.silu(x), 0.5, -1)));
    cs.push(check(`pow ${dt}`, [f([300], dt, 0.2, 2), f([300], dt, 0.5)], ([a, b]) => T.pow(a, b)));
    cs.push(check(`affine/pow/clamp ${dt}`, [f([999], dt)], ([x]) => T.clamp(T.pow(T.affine(x, 1.5, 0.25), 2), -1, 2)));
    // reductions and norms
    for (const ax of [0, 1, 2]) {
      cs.push(check(`sum axis ${ax} ${dt}`, [f([7, 129, 9], dt)], ([x]) => T.sum(x, ax)));
      cs.push(check(`mean/max/min axis ${ax} ${dt}`, [f([7, 129, 9], dt)], ([x]) => T.cat([T.mean(x, ax), T.max(x, ax), T.min(x, ax)], 0)));
      cs.push(check(`argmax axis ${ax} ${dt}`, [f([7, 129, 9], dt)], ([x]) => T.argmax(x, ax), 0));
      cs.push(check(`variance axis ${ax} ${dt}`, [f([7, 129, 9], dt)], ([x]) => T.variance(x, ax)));
    }
    cs.push(check(`softmax ${dt}`, [f([37, 1500], dt, 3)], ([x]) => T.softmax(x, -1)));
    cs.push(check(`layerNorm ${dt}`, [f([65, 3072], dt, 2, 1), f([3072], dt), f([3072], dt)], ([x, w, b]) => T.layerNorm(x, w, b, 1e-6)));
    cs.push(check(`layerNorm no affine ${dt}`, [f([9, 100], dt)], ([x]) => T.layerNorm(x, null, null, 1e-5)));
    cs.push(check(`rmsNorm no weight ${dt}`, [f([7, 3, 64], dt, 2)], ([x]) => T.rmsNorm(x, null, 1e-6)));
    cs.push(check(`rmsNorm ${dt}`, [f([24, 128], dt, 3), f([128], dt)], ([x, w]) => T.rmsNorm(x, w, 1e-6)));
    cs.push(check(`groupNorm ${dt}`, [f([2, 32, 3, 9, 10], dt, 2, 0.5), f([32], dt), f([32], dt)], ([x, w, b]) => T.groupNorm(x, 8, w, b, 1e-6)));
    // GEMM (cuBLASLt)
    cs.push(check(`matmul ${dt}`, [f([3, 64, 96], dt), f([96, 80], dt)], ([a, b]) => T.matmul(a, b)));
    cs.push(check(`matmul batched transB ${dt}`, [f([3, 33, 40], dt), f([3, 20, 40], dt)], ([a, b]) => T.matmul(a, b, { transB: true })));
    cs.push(check(`matmul broadcast batch ${dt}`, [f([2, 1, 17, 24], dt), f([1, 3, 24, 8], dt)], ([a, b]) => T.matmul(a, b)));
    cs.push(check(`matmul left broadcast ${dt}`, [f([16, 24], dt), f([4, 24, 8], dt)], ([a, b]) => T.matmul(a, b)));
    cs.push(check(`linear+bias ${dt}`, [f([2, 77, 768], dt), f([1024, 768], dt, 0.05), f([1024], dt)], ([x, w, b]) => T.linear(x, w, b)));
    cs.push(check(`linear odd sizes ${dt}`, [f([13, 33], dt), f([7, 33], dt), f([7], dt)], ([x, w, b]) => T.linear(x, w, b)));
    cs.push(check(`linear offset view ${dt}`, [f([5, 40], dt), f([24, 40], dt)], ([x, w]) => T.linear(T.slice(x, 0, 1, 4), w)));
    // attention: flash path (half dtypes) and generic path (f32)
    for (const D of [64, 72, 128]) {
      cs.push(check(`attention D=${D} ${dt}`, [f([1, 3, 150, D], dt), f([1, 3, 211, D], dt), f([1, 3, 211, D], dt)], ([q, k, v]) => T.scaledDotProductAttention(q, k, v)));
    }
    cs.push(check(`attention key mask ${dt}`, [f([2, 2, 97, 128], dt), f([2, 2, 130, 128], dt), f([2, 2, 130, 128], dt)], ([q, k, v], dev) => {
      const m = new Uint8Array(2 * 130);
      for (let j = 0; j < 130; j++) (m[j] = j < 101 ? 1 : 0), (m[130 + j] = j < 7 || j > 64 ? 1 : 0);
      return T.scaledDotProductAttention(q, k, v, { mask: T.tensor(m, [2, 1, 1, 130], { dtype: 'bool', device: dev }) });
    }));
    cs.push(check(`attention full mask + empty rows ${dt}`, [f([1, 2, 70, 64], dt), f([1, 2, 90, 64], dt), f([1, 2, 90, 64], dt), f([1, 2, 70, 90])], ([q, k, v, r], dev) => {
      const m = T.gt(r, 0.3);
      const rows = T.lt(T.arange(70, undefined, 1, { device: dev }), 60); // rows >= 60 attend nothing
      const mm = T.where(T.reshape(rows, [1, 1, 70, 1]), m, T.full([1], 0, { dtype: 'bool', device: dev }));
      return T.scaledDotProductAttention(q, k, v, { mask: mm, scale: 0.2 });
    }));
    if (dt !== 'f32')
      for (const D of [64, 128]) {
        // the Hopper kernel (default on sm_90; elsewhere the sm_80 kernels): key mask, causal with Lq < Lk
        cs.push(check(`attention Hopper path D=${D} key mask + causal ${dt}`, [f([1, 2, 200, D], dt), f([1, 2, 333, D], dt), f([1, 2, 333, D], dt)], ([q, k, v], dev) => {
          const m = T.tensor(new Uint8Array(333).map((_, j) => (j < 300 ? 1 : 0)), [1, 1, 1, 333], { dtype: 'bool', device: dev });
          return T.cat([T.scaledDotProductAttention(q, k, v, { mask: m }), T.scaledDotProductAttention(q, k, v, { causal: true })], 2);
        }));
      }
    // (B, L, H, D) operands read in place (the Hopper kernel; elsewhere transposed by the op): against the CPU op
    cs.push(check(`attention BLHD D=128 ${dt}`, [f([2, 300, 3, 128], dt), f([2, 350, 3, 128], dt), f([2, 350, 3, 128], dt)], ([q, k, v]) => T.scaledDotProductAttentionBLHD(q, k, v)));
    cs.push(check(`attention BLHD D=64 causal ${dt}`, [f([1, 200, 2, 64], dt), f([1, 200, 2, 64], dt), f([1, 200, 2, 64], dt)], ([q, k, v]) => T.scaledDotProductAttentionBLHD(q, k, v, { causal: true })));
    // the VAE's mid-block attention: one head of 512 channels, a per-query (frame-causal) mask
    cs.push(check(`attention head dim 512 + query mask ${dt}`, [f([1, 1, 96, 512], dt), f([1, 1, 96, 512], dt), f([1, 1, 96, 512], dt), f([1, 1, 96, 96])], ([q, k, v, r]) => T.scaledDotProductAttention(q, k, v, { mask: T.gt(r, -0.5) })));
    cs.push(check(`attention causal ${dt}`, [f([1, 4, 100, 128], dt), f([1, 4, 130, 128], dt), f([1, 4, 130, 128], dt)], ([q, k, v]) => T.scaledDotProductAttention(q, k, v, { causal: true })));
    cs.push(check(`attention small head ${dt}`, [f([2, 2, 33, 16], dt), f([2, 2, 20, 16], dt), f([2, 2, 20, 16], dt)], ([q, k, v]) => T.scaledDotProductAttention(q, k, v)));
    // conv3d (implicit GEMM), upsample
    cs.push(check(`conv3d k3 p1 ${dt}`, [f([1, 8, 5, 12, 12], dt), f([16, 8, 3, 3, 3], dt, 0.2), f([16], dt)], ([x, w, b]) => T.conv3d(x, w, b, { padding: 1 })));
    cs.push(check(`conv3d stride 2 ${dt}`, [f([2, 3, 4, 9, 11], dt), f([5, 3, 2, 3, 3], dt, 0.3)], ([x, w]) => T.conv3d(x, w, null, { stride: [1, 2, 2], padding: [0, 1, 1] })));
    cs.push(check(`conv3d 1x1 ${dt}`, [f([1, 70, 2, 5, 6], dt), f([65, 70, 1, 1, 1], dt, 0.1), f([65], dt)], ([x, w, b]) => T.conv3d(x, w, b)));
    cs.push(check(`conv3d wide k3 p1 ${dt}`, [f([2, 40, 3, 9, 10], dt), f([130, 40, 3, 3, 3], dt, 0.1), f([130], dt)], ([x, w, b]) => T.conv3d(x, w, b, { padding: 1 })));
    for (const path of ['FRAMEPACK_CONV_MMA', 'FRAMEPACK_CONV_IMPLICIT']) {
      // the implicit-GEMM kernels (tensor cores / SIMT) that serve when the column buffer does not fit
      cs.push(check(`conv3d ${path} ${dt}`, [f([2, 12, 3, 9, 10], dt), f([33, 12, 3, 3, 3], dt, 0.1), f([33], dt)], ([x, w, b]) => {
        process.env[path] = '1';
        try {
          return T.conv3d(x, w, b, { stride: [1, 2, 1], padding: 1 });
        } finally {
          delete process.env[path];
        }
      }));
    }
    cs.push(check(`conv2d ${dt}`, [f([1, 4, 10, 10], dt), f([6, 4, 3, 3], dt)], ([x, w]) => T.conv2d(x, w, null, { padding: 1 })));
    cs.push(check(`upsampleNearest ${dt}`, [f([1, 3, 2, 5, 6], dt)], ([x]) => T.upsampleNearest(x, [2, 2, 2]), 0));
    // data movement (exact)
    cs.push(check(`patchify/unpatchify ${dt}`, [f([1, 16, 2, 8, 6], dt)], ([x]) => T.cat([T.reshape(T.patchify(x, [1, 2, 2]), [-1]), T.reshape(T.unpatchify(T.patchify(x, [1, 2, 2]), [2, 4, 3], [1, 2, 2]), [-1])]), 0));
    cs.push(check(`permute ${dt}`, [f([2, 3, 4, 5], dt)], ([x]) => T.permute(x, [3, 1, 0, 2]), 0));
    cs.push(check(`permute heads (16-byte moves) ${dt}`, [f([2, 33, 6, 64], dt)], ([x]) => T.permute(x, [0, 2, 1, 3]), 0));
    cs.push(check(`cat rows (16-byte moves) ${dt}`, [f([2, 5, 64], dt), f([2, 7, 64], dt)], ([a, b]) => T.cat([a, b], 1), 0));
    cs.push(check(`cat axis 1 ${dt}`, [f([2, 3, 4], dt), f([2, 5, 4], dt)], ([a, b]) => T.cat([a, b], 1), 0));
    cs.push(check(`slice step ${dt}`, [f([4, 9, 5], dt)], ([x]) => T.slice(x, 1, 1, 8, 3), 0));
    cs.push(check(`pad constant ${dt}`, [f([2, 3, 4], dt)], ([x]) => T.pad(x, [[1, 2], [0, 3]], 'constant', 1.5), 0));
    cs.push(check(`pad replicate ${dt}`, [f([1, 2, 3, 4, 5], dt)], ([x]) => T.pad(x, [[2, 0], [1, 1], [1, 2]], 'replicate'), 0));
    cs.push(check(`rope interleaved ${dt}`, [f([1, 5, 2, 64], dt), f([5, 1, 64], dt), f([5, 1, 64], dt)], ([x, c, s]) => T.rope(x, c, s, 'interleaved')));
    cs.push(check(`rope half ${dt}`, [f([2, 3, 7, 32], dt), f([7, 32], dt), f([7, 32], dt)], ([x, c, s]) => T.rope(x, c, s, 'half')));
    cs.push(check(`cast roundtrip ${dt}`, [f([500], dt, 100)], ([x]) => T.cast(T.cast(T.cast(x, 'f16'), 'f32'), 'bf16')));
  }
  // integer / bool paths and indexing (exact)
  const ids = (n: number, hi: number, neg = false): In => ({ data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * hi) - (neg && rand() < 0.3 ? hi : 0))), shape: [n], dtype: 'i64' });
  cs.push(check('indexSelect i64 (negative ids)', [f([11, 6, 4], 'bf16'), ids(9, 6, true)], ([x, i]) => T.indexSelect(x, 1, i), 0));
  cs.push(check('embedding', [ids(15, 50), f([50, 24], 'bf16')], ([i, w]) => T.embedding(i, w), 0));
  cs.push(check('gather axis 1', [f([4, 7, 3]), { data: BigInt64Array.from({ length: 4 * 5 * 3 }, () => BigInt(Math.floor(rand() * 7))), shape: [4, 5, 3], dtype: 'i64' }], ([x, i]) => T.gather(x, 1, i), 0));
  cs.push(check('compare + where', [f([6, 40]), f([40])], ([a, b]) => T.where(T.gt(a, b), a, T.neg(b)), 0));
  cs.push(check('i64 arithmetic + casts', [ids(64, 1000)], ([i]) => T.cast(T.add(T.mul(i, i), T.div(i, T.full([1], 7, { dtype: 'i64', device: i.device }))), 'f32'), 0));
  cs.push(check('argmax bf16 rows', [f([5, 3000], 'bf16')], ([x]) => T.argmax(x, 1), 0));
  cs.push(check('writeRegion', [f([3, 10, 12], 'bf16'), f([2, 4, 5], 'bf16')], ([d, s]) => T.writeRegion(T.clone(d), s, [1, 3, 6]), 0));
  cs.push(check('zeros/full/arange', [], (_, dev) => T.cat([T.zeros([5], { device: dev }), T.full([5], -2.5, { device: dev }), T.arange(3, 13, 2, { device: dev })]), 0));
  return cs;
}

/** Run every check; `onResult` sees each as it finishes. */
export function runCudaChecks(onResult?: (r: CheckResult) => void): CheckResult[] {
  const out: CheckResult[] = [];
  for (const c of cudaChecks()) {
    let r: CheckResult;
    try {
      r = c.run();
    } catch (e) {
      r = { name: `${c.name} (threw: ${(e as Error).message.split('\n')[0]})`, err: NaN, limit: 0, pass: false };
    }
    out.push(r);
    onResult?.(r);
  }
  return out;
}
