import * as T from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { ClipTextEncoder, parseClipTextConfig } from '@framepack/encoders';
import { compareOutputs } from '../compare.js';
import type { GoldenKind } from '../types.js';

/** CLIP text encoder: last_hidden_state and pooler_output (legacy argmax pooling when eos_token_id == 2). */
export const kind: GoldenKind = {
  name: 'clip-text',
  async run(c) {
    const w = openSafetensors(c.weightsPath());
    let enc: ClipTextEncoder;
    try {
      enc = ClipTextEncoder.fromSource(parseClipTextConfig(c.json.config, `${c.name}/case.json`), w, c.weightsPath(), { dtype: c.dtype, device: c.device });
    } finally {
      w.close();
    }
    const ids = c.tensors.tensor('in.input_ids', { device: c.device });
    const mask = c.tensors.keys().includes('in.attention_mask') ? c.tensors.tensor('in.attention_mask', { device: c.device }) : null;
    const { lastHiddenState, pooled } = enc.forwardWithPooled(ids, mask);
    const pairs: Record<string, { ours: T.Tensor; ref: T.Tensor }> = {
      pooler_output: { ours: pooled, ref: c.tensors.tensor('out.pooler_output') },
      last_hidden_state: { ours: lastHiddenState, ref: c.tensors.tensor('out.last_hidden_state') },
    };
    const r = compareOutputs(pairs, c.tolerance);
    for (const p of Object.values(pairs)) {
      p.ours.dispose();
      p.ref.dispose();
    }
    ids.dispose();
    mask?.dispose();
    enc.dispose();
    return r;
  },
};
