import type { Tensor } from '@framepack/tensor-core';

/** key -> shape of a weight map, or of anything that lists keys with their info (a safetensors file / checkpoint). */
export function shapesOf(src: Readonly<Record<string, Tensor>> | { keys(): string[]; info(name: string): { shape: readonly number[] } }): Map<string, readonly number[]> {
  const out = new Map<string, readonly number[]>();
  if (typeof (src as { info?: unknown }).info === 'function' && typeof (src as { keys?: unknown }).keys === 'function') {
    const s = src as { keys(): string[]; info(name: string): { shape: readonly number[] } };
    for (const k of s.keys()) out.set(k, s.info(k).shape);
  } else for (const [k, t] of Object.entries(src as Record<string, Tensor>)) out.set(k, t.shape);
  return out;
}
