import { fluxSigmas } from '@framepack/k-diffusion';
import { compareOutputs } from '../compare.js';
import type { GoldenKind } from '../types.js';

interface BySeq {
  seq_length: number;
  steps: number;
  mu: number;
  sigmas: number[];
}
interface ByShift {
  shift: number;
  steps: number;
  sigmas: number[];
}

/** The flow sigma schedule: mu from the sequence length (float64) and the float32 sigmas, or from an explicit shift. */
export const kind: GoldenKind = {
  name: 'sigmas',
  async run(c) {
    const bySeq = (c.json.by_seq_length ?? []) as BySeq[];
    const byShift = (c.json.by_shift ?? []) as ByShift[];
    if (bySeq.length + byShift.length === 0) throw new Error('case.json has neither by_seq_length nor by_shift');
    const pairs: Record<string, { ours: number[] | Float32Array; ref: number[] }> = {};
    for (const r of bySeq) {
      const { sigmas, mu } = fluxSigmas({ steps: r.steps, seqLength: r.seq_length });
      pairs[`seq${r.seq_length}.steps${r.steps}.sigmas`] = { ours: sigmas, ref: r.sigmas };
      pairs[`seq${r.seq_length}.steps${r.steps}.mu`] = { ours: [mu], ref: [r.mu] };
    }
    for (const r of byShift) {
      const { sigmas } = fluxSigmas({ steps: r.steps, shift: r.shift });
      pairs[`shift${r.shift}.steps${r.steps}.sigmas`] = { ours: sigmas, ref: r.sigmas };
    }
    return compareOutputs(pairs, c.tolerance);
  },
};
