import * as T from '@framepack/tensor-core';
import { type DiTConfig, expectedWeightShapes, parseConfig } from '@framepack/dit-model';

/** Small seeded PRNG (mulberry32). */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function rand(shape: readonly number[], seed = 1, scale = 1): T.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), shape);
}

/** A tiny packed DiT: 2 heads x 8, 1 dual + 1 single block, rope axes (2, 2, 4). */
export function tinyConfig(over: Record<string, unknown> = {}): DiTConfig {
  return parseConfig({
    num_attention_heads: 2, attention_head_dim: 8, num_layers: 1, num_single_layers: 1, num_refiner_layers: 1,
    text_embed_dim: 12, pooled_projection_dim: 6, rope_axes_dim: [2, 2, 4], has_image_proj: true, image_proj_dim: 10,
    has_clean_x_embedder: true, ...over,
  });
}

/** Random weights for every key of a config (norm weights around 1, the rest small). */
export function randomWeights(c: DiTConfig, seed = 7): Record<string, T.Tensor> {
  const out: Record<string, T.Tensor> = {};
  let s = seed;
  for (const [k, shape] of expectedWeightShapes(c)) {
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const w = rand(shape, s++, shape.length > 1 ? 1 / Math.sqrt(fanIn) : 0.2);
    out[k] = /norm.*\.weight$/.test(k) && shape.length === 1 ? T.add(w, 1) : w;
  }
  return out;
}

export function maxAbsDiff(a: T.Tensor, b: T.Tensor): number {
  const x = a.toFloat32Array(), y = b.toFloat32Array();
  if (x.length !== y.length) throw new Error(`sizes differ: [${a.shape}] vs [${b.shape}]`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
