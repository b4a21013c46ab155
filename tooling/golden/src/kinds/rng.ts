import { randn, TorchGenerator } from '@framepack/k-diffusion';
import { compareOutputs } from '../compare.js';
import type { GoldenKind } from '../types.js';

interface Draw {
  shape: number[];
  tensor: string;
}

/** torch.Generator('cpu').manual_seed(seed) then successive torch.randn draws: every stream and draw in case.json. */
export const kind: GoldenKind = {
  name: 'rng',
  async run(c) {
    const streams = c.json.streams as { seed: number; draws: Draw[] }[];
    if (!Array.isArray(streams) || streams.length === 0) throw new Error('case.json has no streams');
    const pairs: Record<string, { ours: Float32Array; ref: Float32Array }> = {};
    for (const s of streams) {
      const gen = new TorchGenerator(s.seed);
      for (const d of s.draws) {
        const t = randn(d.shape, gen);
        pairs[d.tensor] = { ours: t.toFloat32Array(), ref: c.tensors.readF32(d.tensor) };
        t.dispose();
        const info = c.tensors.info(d.tensor);
        if (info.shape.join() !== d.shape.join()) throw new Error(`${d.tensor}: stored shape [${info.shape}] != drawn shape [${d.shape}]`);
      }
    }
    return compareOutputs(pairs, c.tolerance);
  },
};
