import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';

/** Deterministic PRNG (mulberry32) so test data does not depend on Math.random. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

export function rand(shape: number[], r: () => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(Float64Array.from({ length: n }, () => r()), shape);
}

/** The packed-model parameter shapes of a tiny FramePack DiT (hidden h, mlp 4h). */
export function tinyShapes(h = 8, double = 2, single = 2, refiner = 1): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const lin = (name: string, out: number, inp: number, bias = true) => {
    m.set(`${name}.weight`, [out, inp]);
    if (bias) m.set(`${name}.bias`, [out]);
  };
  m.set('x_embedder.proj.weight', [h, 4, 1, 2, 2]);
  m.set('x_embedder.proj.bias', [h]);
  lin('context_embedder.proj_in', h, 6);
  for (let i = 0; i < refiner; i++) {
    const p = `context_embedder.token_refiner.refiner_blocks.${i}`;
    for (const q of ['to_q', 'to_k', 'to_v', 'to_out.0']) lin(`${p}.attn.${q}`, h, h);
    lin(`${p}.ff.net.0.proj`, 4 * h, h);
    lin(`${p}.ff.net.2`, h, 4 * h);
    lin(`${p}.norm_out.linear`, 2 * h, h);
  }
  lin('time_text_embed.timestep_embedder.linear_1', h, 16);
  lin('time_text_embed.timestep_embedder.linear_2', h, h);
  for (let i = 0; i < double; i++) {
    const p = `transformer_blocks.${i}`;
    for (const q of ['to_q', 'to_k', 'to_v', 'add_q_proj', 'add_k_proj', 'add_v_proj', 'to_out.0', 'to_add_out']) lin(`${p}.attn.${q}`, h, h);
    m.set(`${p}.attn.norm_q.weight`, [h / 2]);
    lin(`${p}.norm1.linear`, 6 * h, h);
    lin(`${p}.norm1_context.linear`, 6 * h, h);
    lin(`${p}.ff.net.0.proj`, 4 * h, h);
    lin(`${p}.ff.net.2`, h, 4 * h);
    lin(`${p}.ff_context.net.0.proj`, 4 * h, h);
    lin(`${p}.ff_context.net.2`, h, 4 * h);
  }
  for (let i = 0; i < single; i++) {
    const p = `single_transformer_blocks.${i}`;
    for (const q of ['to_q', 'to_k', 'to_v']) lin(`${p}.attn.${q}`, h, h);
    lin(`${p}.proj_mlp`, 4 * h, h);
    lin(`${p}.proj_out`, h, 5 * h);
    lin(`${p}.norm.linear`, 3 * h, h);
  }
  lin('norm_out.linear', 2 * h, h);
  lin('proj_out', 16, h);
  return m;
}

export function randomWeights(shapes: Map<string, number[]>, seed: number): Record<string, Tensor> {
  const r = rng(seed);
  const w: Record<string, Tensor> = {};
  for (const [k, s] of shapes) w[k] = rand(s, r);
  return w;
}

/** Naive float64 (rows x k) @ (k x cols) on plain arrays, the independent oracle for the merge. */
export function naiveMatmul(a: Float32Array | number[], b: Float32Array | number[], rows: number, k: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) s += a[i * k + x] * b[x * cols + j];
      out[i * cols + j] = s;
    }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
