import * as T from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { parseSiglipVisionConfig, SiglipVisionEncoder } from '@framepack/encoders';
import { compareOutputs } from '../compare.js';
import type { GoldenKind } from '../types.js';

/** SigLIP vision tower: last_hidden_state (FramePack's image tokens) and, when the case has it, pooler_output. */
export const kind: GoldenKind = {
  name: 'siglip-vision',
  async run(c) {
    const hasPooler = c.tensors.keys().includes('out.pooler_output');
    const w = openSafetensors(c.weightsPath());
    let enc: SiglipVisionEncoder;
    try {
      enc = SiglipVisionEncoder.fromSource(parseSiglipVisionConfig(c.json.config, `${c.name}/case.json`), w, c.weightsPath(), { dtype: c.dtype, device: c.device, withHead: hasPooler });
    } finally {
      w.close();
    }
    const px = c.tensors.tensor('in.pixel_values', { device: c.device });
    const last = enc.forward(px);
    const pairs: Record<string, { ours: T.Tensor; ref: T.Tensor }> = { last_hidden_state: { ours: last, ref: c.tensors.tensor('out.last_hidden_state') } };
    if (hasPooler) pairs.pooler_output = { ours: enc.pool(last), ref: c.tensors.tensor('out.pooler_output') };
    const r = compareOutputs(pairs, c.tolerance);
    for (const p of Object.values(pairs)) {
      p.ours.dispose();
      p.ref.dispose();
    }
    px.dispose();
    enc.dispose();
    return r;
  },
};
