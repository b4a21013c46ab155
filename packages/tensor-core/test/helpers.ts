import * as T from '@framepack/tensor-core';

/** Small seeded PRNG (mulberry32) for property tests. */
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
export function rand(shape: number[], seed = 1, scale = 1): T.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return T.tensor(Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale), shape);
}
export function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= tol * Math.max(1, Math.abs(b[i])))) throw new Error(`element ${i}: ${a[i]} vs ${b[i]} (|d|=${d})`);
  }
}
