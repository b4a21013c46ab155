import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
import { latentShape, type ModelDType, type ModelFn, randn, sampleHunyuan, TorchGenerator } from '@framepack/k-diffusion';
import { openSafetensors } from '@framepack/safetensors';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { compareOutputs, referenceModelDType } from '../compare.js';
import type { GoldenCase, GoldenKind } from '../types.js';

/** FramePack's sample_hunyuan keyword arguments (the case's in.* names) -> where they go. */
const SHARED: Record<string, keyof PackedDiTInputs> = {
  image_embeddings: 'imageEmbeddings',
  latent_indices: 'latentIndices',
  clean_latents: 'cleanLatents',
  clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x',
  clean_latent_2x_indices: 'cleanLatentIndices2x',
  clean_latents_4x: 'cleanLatents4x',
  clean_latent_4x_indices: 'cleanLatentIndices4x',
};
/** prompt_embeds / prompt_embeds_mask / prompt_poolers, and the negative ones with an `_n` suffix. */
const PROMPT: Record<string, keyof PackedDiTInputs> = {
  llama_vec: 'encoderHiddenStates',
  llama_attention_mask: 'encoderAttentionMask',
  clip_l_pooler: 'pooledProjections',
};

type Cond = Partial<PackedDiTInputs>;

interface Run {
  seed: number;
  cfg: number;
  gs: number;
  rs: number;
  steps: number;
  width: number;
  height: number;
  frames: number;
  out: string;
}

function readInputs(c: GoldenCase): { shared: Cond; positive: Cond; negative: Cond; all: Tensor[] } {
  const shared: Cond = {}, positive: Cond = {}, negative: Cond = {};
  const all: Tensor[] = [];
  for (const key of c.tensors.keys().filter((k) => k.startsWith('in.'))) {
    const name = key.slice(3);
    const base = name.endsWith('_n') ? name.slice(0, -2) : name;
    const dst = SHARED[name] ? shared : PROMPT[base] ? (base === name ? positive : negative) : null;
    if (!dst) throw new Error(`${key}: not an argument of sample_hunyuan`);
    const t = c.tensors.tensor(key, { device: c.device }); // as stored: the model casts activations itself
    all.push(t);
    (dst as Record<string, Tensor>)[SHARED[name] ?? PROMPT[base]] = t;
  }
  return { shared, positive, negative, all };
}

/** sample_hunyuan (UniPC bh1) on the case's tiny DiT: initial noise, every step's state and x0, the result. */
export const kind: GoldenKind = {
  name: 'sample-hunyuan',
  async run(c) {
    const wf = openSafetensors(c.weightsPath());
    let model: HunyuanVideoTransformer3DModelPacked;
    try {
      model = HunyuanVideoTransformer3DModelPacked.fromWeights(c.json.config, wf, { dtype: c.dtype, device: c.device });
    } finally {
      wf.close();
    }
    const { shared, positive, negative, all } = readInputs(c);
    // the sampler rounds x, timestep and guidance to the model's storage dtype, as fm_wrapper does
    const dtype: ModelDType = referenceModelDType(c.json);
    const dit: ModelFn<Cond> = (x, timestep, cond, ctx) =>
      model.forward({ ...shared, ...cond, hiddenStates: x, timestep, guidance: ctx.guidance! } as PackedDiTInputs, { step: ctx.step, totalSteps: ctx.totalSteps });
    const pairs: Record<string, { ours: Float32Array; ref: Float32Array }> = {};
    const has = new Set(c.tensors.keys());
    const ref = (name: string) => c.tensors.readF32(name);
    try {
      for (const [n, run] of (c.json.runs as Run[]).entries()) {
        const prefix = `dbg.run${n}.`;
        if (has.has(`${prefix}initial_noise`)) {
          const noise = randn(latentShape(run), new TorchGenerator(run.seed));
          pairs[`${prefix}initial_noise`] = { ours: noise.toFloat32Array(), ref: ref(`${prefix}initial_noise`) };
          noise.dispose();
        }
        const out = await sampleHunyuan({
          model: dit,
          positive,
          negative,
          width: run.width,
          height: run.height,
          frames: run.frames,
          steps: run.steps,
          cfg: run.cfg,
          gs: run.gs,
          rs: run.rs,
          generator: new TorchGenerator(run.seed),
          dtype,
          device: c.device,
          callback: (s) => {
            for (const [what, t] of [['x', s.x], ['denoised', s.denoised]] as const) {
              const key = `${prefix}${what}.${s.step}`;
              if (has.has(key)) pairs[key] = { ours: t.toFloat32Array(), ref: ref(key) };
            }
          },
        });
        pairs[run.out] = { ours: out.toFloat32Array(), ref: ref(run.out) };
        out.dispose();
      }
    } finally {
      T.disposeAll(all);
      model.dispose();
    }
    return compareOutputs(pairs, c.tolerance);
  },
};
