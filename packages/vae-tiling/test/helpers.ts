import * as T from '@framepack/tensor-core';
import { expectedParameters, type HunyuanVideoVaeConfig, HUNYUAN_VIDEO_VAE_CONFIG, HunyuanVideoVae } from '@framepack/vae-tiling';

/** Small seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function randTensor(shape: number[], seed: number, scale = 1): T.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), shape);
}

/** A tiny config (same structure as the real one: 4 blocks, 8x spatial, 4x temporal). */
export function tinyConfig(over: Partial<HunyuanVideoVaeConfig> = {}): HunyuanVideoVaeConfig {
  return { ...HUNYUAN_VIDEO_VAE_CONFIG, latentChannels: 4, blockOutChannels: [8, 8, 8, 8], layersPerBlock: 1, normNumGroups: 4, ...over };
}

/** Random weights for a config: norms near 1, convs scaled by 1/sqrt(fan-in) so activations stay O(1). */
export function randomWeights(config: HunyuanVideoVaeConfig, seed = 7): Map<string, T.Tensor> {
  const m = new Map<string, T.Tensor>();
  let s = seed;
  for (const [k, shape] of expectedParameters(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const r = rng(s++);
    let vals: Float32Array;
    if (/norm|group_norm/.test(k)) vals = Float32Array.from({ length: n }, () => (k.endsWith('.weight') ? 1 : 0) + (r() * 2 - 1) * 0.1);
    else {
      const fanIn = shape.length > 1 ? n / shape[0] : 1;
      const sc = k.endsWith('.bias') ? 0.05 : 1.2 / Math.sqrt(fanIn);
      vals = Float32Array.from({ length: n }, () => (r() * 2 - 1) * sc);
    }
    m.set(k, T.tensor(vals, shape));
  }
  return m;
}

export function tinyVae(over: Partial<HunyuanVideoVaeConfig> = {}, seed = 7): HunyuanVideoVae {
  const c = tinyConfig(over);
  return HunyuanVideoVae.fromWeights(c, randomWeights(c, seed));
}

export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
