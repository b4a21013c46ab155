import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
import { compareOutputs } from '../compare.js';
import type { GoldenCase, GoldenKind } from '../types.js';

/** The reference forward's argument names -> PackedDiTInputs fields. */
const ARGS: Record<string, keyof PackedDiTInputs> = {
  hidden_states: 'hiddenStates',
  timestep: 'timestep',
  encoder_hidden_states: 'encoderHiddenStates',
  encoder_attention_mask: 'encoderAttentionMask',
  pooled_projections: 'pooledProjections',
  guidance: 'guidance',
  latent_indices: 'latentIndices',
  clean_latents: 'cleanLatents',
  clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x',
  clean_latent_2x_indices: 'cleanLatentIndices2x',
  clean_latents_4x: 'cleanLatents4x',
  clean_latent_4x_indices: 'cleanLatentIndices4x',
  image_embeddings: 'imageEmbeddings',
};

/** The packed DiT model of a case (config from case.json, weights from weights.safetensors or weights_from). */
export function loadCaseModel(c: GoldenCase): HunyuanVideoTransformer3DModelPacked {
  const wf = openSafetensors(c.weightsPath());
  try {
    return HunyuanVideoTransformer3DModelPacked.fromWeights(c.json.config, wf, { dtype: c.dtype, device: c.device });
  } finally {
    wf.close();
  }
}

/**
 * The case's in.* tensors as forward inputs, as stored (the model casts activations to its dtype itself and
 * reads timestep/guidance as given, like the reference's time_proj).
 */
export function caseInputs(c: GoldenCase): PackedDiTInputs {
  const inputs: Partial<Record<keyof PackedDiTInputs, Tensor>> = {};
  for (const key of c.tensors.keys().filter((k) => k.startsWith('in.'))) {
    const field = ARGS[key.slice(3)];
    if (!field) throw new Error(`${key}: not an argument of the packed DiT forward`);
    inputs[field] = c.tensors.tensor(key, { device: c.device });
  }
  return inputs as PackedDiTInputs;
}

export const kind: GoldenKind = {
  name: 'dit-forward',
  async run(c) {
    const model = loadCaseModel(c);
    const inputs = caseInputs(c);
    try {
      const outs = c.tensors.keys().filter((k) => k.startsWith('out.'));
      const unknown = outs.filter((k) => k !== 'out.sample');
      if (unknown.length) throw new Error(`unknown outputs ${unknown.join(', ')} (the forward returns out.sample only)`);
      const sample = model.forward(inputs);
      const ref = c.tensors.tensor('out.sample');
      const r = compareOutputs({ sample: { ours: sample, ref } }, c.tolerance);
      T.disposeAll([sample, ref]);
      return r;
    } finally {
      T.disposeAll(inputs);
      model.dispose();
    }
  },
};
