import { sampleUniPC, type UniPCVariant } from '@framepack/k-diffusion';
import * as T from '@framepack/tensor-core';
import { compareOutputs } from '../compare.js';
import type { GoldenKind } from '../types.js';

/** The closed-form model these cases are generated with (case.json `model`); any other model is refused. */
const MODEL = 'x0(x, sigma) = 0.3 * x + b * (1 + sigma)  (per batch item sigma)';

interface Run {
  variant: UniPCVariant;
  steps: number;
  sigmas: string;
  out: string;
}

/** FlowMatchUniPC (bh1/bh2) on the analytic x0 model: final output and the state after every step. */
export const kind: GoldenKind = {
  name: 'unipc',
  async run(c) {
    if (c.json.model !== MODEL) throw new Error(`unsupported analytic model '${c.json.model}' (this kind implements '${MODEL}')`);
    const noise = c.tensors.tensor('in.noise', { device: c.device });
    const b = c.tensors.tensor('in.b', { device: c.device });
    // x0 = 0.3 x + b (1 + sigma), each op rounded to f32 as the reference's tensor ops
    const model = (x: T.Tensor, sigma: number) => T.tidy(() => T.add(T.mul(x, Math.fround(0.3)), T.mul(b, Math.fround(1 + sigma))));
    const pairs: Record<string, { ours: Float32Array; ref: Float32Array }> = {};
    try {
      for (const r of c.json.runs as Run[]) {
        const sigmas = c.tensors.readF32(r.sigmas);
        if (sigmas.length !== r.steps + 1) throw new Error(`${r.sigmas}: ${sigmas.length} sigmas for ${r.steps} steps`);
        const out = sampleUniPC(model, noise, sigmas, {
          variant: r.variant,
          callback: (s) => {
            const key = `dbg.${r.variant}.${r.steps}.x.${s.step}`;
            if (c.tensors.keys().includes(key)) pairs[key] = { ours: s.x.toFloat32Array(), ref: c.tensors.readF32(key) };
          },
        });
        pairs[r.out] = { ours: out.toFloat32Array(), ref: c.tensors.readF32(r.out) };
        out.dispose();
      }
    } finally {
      T.disposeAll([noise, b]);
    }
    return compareOutputs(pairs, c.tolerance);
  },
};
