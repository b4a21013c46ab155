import * as T from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { cropLlamaHidden, cropOrPadYieldMask, LlamaTextEncoder, parseLlamaConfig } from '@framepack/encoders';
import { compareOutputs, withExactCheck } from '../compare.js';
import type { GoldenKind } from '../types.js';

/**
 * The case configs are dumped from transformers 5, which keeps rope_theta in `rope_parameters`; the dump may
 * leave both out. The reference model (HunyuanVideo's LLaMA-3 text encoder, config rope_theta 500000) is the
 * one these cases describe, so a config without any RoPE field gets LLaMA-3's theta rather than transformers'
 * generic 10000 default. (On text-llama: 500000 reproduces the reference to 5e-7; 10000 misses by 0.28.)
 */
function caseConfig(cfg: Record<string, any>): Record<string, any> {
  if (cfg.rope_theta !== undefined || cfg.rope_parameters !== undefined) return cfg;
  return { ...cfg, rope_theta: 500000 };
}

/**
 * LLaMA text encoder: hidden_states[-3] (and last_hidden_state) with a right-padded attention mask, then
 * FramePack's crop [crop_start, valid) and crop_or_pad_yield_mask to every padded length the case lists.
 */
export const kind: GoldenKind = {
  name: 'llama',
  async run(c) {
    const w = openSafetensors(c.weightsPath());
    let enc: LlamaTextEncoder;
    try {
      enc = LlamaTextEncoder.fromSource(parseLlamaConfig(caseConfig(c.json.config), `${c.name}/case.json`), w, c.weightsPath(), { dtype: c.dtype, device: c.device });
    } finally {
      w.close();
    }
    const ids = c.tensors.tensor('in.input_ids', { device: c.device });
    const mask = c.tensors.tensor('in.attention_mask', { device: c.device });
    const pairs: Record<string, { ours: T.Tensor; ref: T.Tensor }> = {};
    const hs3 = enc.forward(ids, mask, { hiddenStateIndex: -3 });
    pairs['hidden_states_minus3'] = { ours: hs3, ref: c.tensors.tensor('out.hidden_states_minus3') };
    pairs['last_hidden_state'] = { ours: enc.forward(ids, mask), ref: c.tensors.tensor('out.last_hidden_state') };
    const cropStart = Number(c.json.crop_start);
    const vec = cropLlamaHidden(hs3, mask, cropStart);
    pairs['llama_vec'] = { ours: vec, ref: c.tensors.tensor('out.llama_vec') };
    // The valid length FramePack derives from the mask must be the one the case states.
    const valid = mask.toArray().reduce((a, b) => a + b, 0);
    let exact = valid === Number(c.json.valid_len) && vec.shape[1] === valid - cropStart;
    for (const key of c.tensors.keys()) {
      const m = /^out\.llama_vec_padded(\d+)$/.exec(key);
      if (!m) continue;
      const length = c.tensors.info(key).shape[1];
      const { value, mask: pm } = cropOrPadYieldMask(vec, length);
      pairs[`llama_vec_padded${m[1]}`] = { ours: value, ref: c.tensors.tensor(key) };
      const refMask = c.tensors.tensor(`out.llama_mask_padded${m[1]}`);
      const a = pm.toArray(), b = refMask.toArray();
      exact &&= a.length === b.length && a.every((v, i) => v === b[i]);
    }
    const r = withExactCheck(compareOutputs(pairs, c.tolerance), exact, 'valid length / padded masks');
    for (const p of Object.values(pairs)) {
      p.ours.dispose();
      p.ref.dispose();
    }
    ids.dispose();
    mask.dispose();
    enc.dispose();
    return r;
  },
};
