/**
 * Shared by the teacache and magcache kinds (no `kind` export, so the runner does not list it): one FramePack
 * sample_hunyuan run of the case's tiny DiT with a step-skip hook installed, as the reference's cases were made.
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import type { PackedDiTInputs, StepSkipHook } from '@framepack/dit-model';
import { sampleHunyuan, type ModelCallContext } from '@framepack/k-diffusion';
import { referenceModelDType } from '../compare.js';
import type { GoldenCase } from '../types.js';
import { loadCaseModel } from './dit-forward.js';

/** sample_hunyuan's conditioning names (the cases' in.* tensors) -> forward inputs. */
const COND: Record<string, keyof PackedDiTInputs> = {
  llama_vec: 'encoderHiddenStates',
  llama_attention_mask: 'encoderAttentionMask',
  clip_l_pooler: 'pooledProjections',
  image_embeddings: 'imageEmbeddings',
  latent_indices: 'latentIndices',
  clean_latents: 'cleanLatents',
  clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x',
  clean_latent_2x_indices: 'cleanLatentIndices2x',
  clean_latents_4x: 'cleanLatents4x',
  clean_latent_4x_indices: 'cleanLatentIndices4x',
};
type Cond = Omit<PackedDiTInputs, 'hiddenStates' | 'timestep' | 'guidance'>;

/** A sampling setting the case states only in its note (e.g. "cfg=1, gs=10"), unless a run or the case has the field. */
export function samplingParam(c: GoldenCase, run: Record<string, any>, name: 'cfg' | 'gs' | 'rs', fallback?: number): number {
  const v = run[name] ?? c.json[name];
  if (typeof v === 'number') return v;
  const m = new RegExp(`\\b${name}\\s*=\\s*([0-9.]+)`).exec(String(c.json.note ?? ''));
  if (m) return Number(m[1]);
  if (fallback !== undefined) return fallback;
  throw new Error(`case ${c.name} gives no '${name}' (run, case or note)`);
}

export interface SamplingRun {
  out: Tensor;
  ref: Tensor;
  calls: ModelCallContext[];
}

/**
 * Sample one run: the noise from run.seed, the video size from the expected output's shape (B, 16, T, H, W):
 * width = 8W, height = 8H, frames = 4T - 3 (FramePack's 4 * window - 3), and the model called with the branch's hook.
 */
export async function sampleWithHooks(c: GoldenCase, run: Record<string, any>, hookFor: (branch: 'positive' | 'negative') => StepSkipHook): Promise<SamplingRun> {
  const outKey = String(run.out);
  const shape = c.tensors.info(outKey).shape;
  if (shape.length !== 5) throw new Error(`${outKey} should be a (B, 16, T, H, W) latent, got [${shape}]`);
  const [, , t, h, w] = shape;
  const cond: Partial<Record<keyof PackedDiTInputs, Tensor>> = {};
  const negative: Partial<Record<keyof PackedDiTInputs, Tensor>> = {};
  for (const key of c.tensors.keys().filter((k) => k.startsWith('in.'))) {
    const name = key.slice(3);
    const neg = name.endsWith('_n');
    const field = COND[neg ? name.slice(0, -2) : name];
    if (!field) throw new Error(`${key}: not a sample_hunyuan conditioning input`);
    (neg ? negative : cond)[field] = c.tensors.tensor(key, { device: c.device });
  }
  const model = loadCaseModel(c);
  const calls: ModelCallContext[] = [];
  const cfg = samplingParam(c, run, 'cfg');
  try {
    const out = await sampleHunyuan<Cond>({
      model: (x, timestep, cnd, ctx) => {
        if (!ctx.guidance) throw new Error('the sampler gave no distilled guidance (the case model has guidance embeds)');
        return model.forward({ ...cnd, hiddenStates: x, timestep, guidance: ctx.guidance }, { stepSkip: hookFor(ctx.branch), step: ctx.step, totalSteps: ctx.totalSteps });
      },
      positive: cond as Cond,
      // the negative pass shares the positive's clean latents / image tokens, as sample_hunyuan's kwargs do
      negative: cfg !== 1 ? ({ ...cond, ...negative } as Cond) : undefined,
      width: 8 * w,
      height: 8 * h,
      frames: 4 * t - 3,
      steps: run.steps,
      cfg,
      gs: samplingParam(c, run, 'gs'),
      rs: samplingParam(c, run, 'rs', 0),
      seed: run.seed,
      dtype: referenceModelDType(c.json),
      device: c.device,
      onModelCall: (ctx) => calls.push({ ...ctx, guidance: undefined }),
    });
    return { out, ref: c.tensors.tensor(outKey), calls };
  } finally {
    T.disposeAll([cond, negative]);
    model.dispose();
  }
}

export const sameList = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
