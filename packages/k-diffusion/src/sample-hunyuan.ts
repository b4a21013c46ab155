// FramePack's sample_hunyuan: initial noise from the (shared) CPU generator, the shifted flow sigma schedule,
// the fm wrapper (CFG, rescale, distilled guidance) and UniPC, with per-step callbacks and cancellation.
import * as T from '@framepack/tensor-core';
import { SamplerOptionError, SamplerShapeError, SamplingCancelledError } from './errors.js';
import { f } from './f32.js';
import { randn, TorchGenerator } from './rng.js';
import { fluxSigmasFromMu, muFor, seqLengthOf } from './sigmas.js';
import { unipcSteps, type UniPCVariant } from './unipc.js';
import { flowMatchDenoiser, type ModelCallContext, type ModelDType, type ModelFn, roundToDType, roundTensorTo } from './wrapper.js';

/** What the per-step callback sees (tensors owned by the sampler: copy what you keep). */
export interface SamplerStepInfo {
  step: number;
  totalSteps: number;
  /** The solver state after this step. */
  x: T.Tensor;
  /** The x0 prediction of this step (FramePack decodes it for the live preview). */
  denoised: T.Tensor;
}

export interface SampleHunyuanOptions<C> {
  model: ModelFn<C>;
  /** Positive conditioning, passed through to the model untouched (repeat it to the batch size yourself). */
  positive: C;
  /** Negative conditioning: needed when cfg != 1, never used otherwise. */
  negative?: C;
  /** Pixel size of the video: multiples of 8. */
  width: number;
  height: number;
  /** Pixel frames; the latent has (frames + 3) // 4 frames (FramePack passes 4 * window - 3). */
  frames: number;
  /** Denoising steps (default 25). */
  steps?: number;
  /** Real CFG scale (default 1: one model call per step). */
  cfg?: number;
  /** Distilled guidance scale; the model gets gs*1000 (default 6, sample_hunyuan's default; FramePack's UI uses 10). */
  gs?: number;
  /** Guidance rescale phi in [0, 1] (default 0). */
  rs?: number;
  /** Explicit schedule shift (mu = ln shift); by default mu comes from the noisy token count, clamped at ln 7. */
  shift?: number | null;
  /** Batch rows (default 1). */
  batchSize?: number;
  /** The noise source: a shared generator (consumed: successive calls continue its stream), or a seed. */
  generator?: TorchGenerator;
  seed?: number | bigint;
  /** Explicit initial noise (B, 16, (frames+3)//4, height/8, width/8) f32; the generator is then not used. */
  noise?: T.Tensor;
  /** img2img: start from this latent noised to the first sigma; sigmas are scaled by `strength` (default 1). */
  initialLatent?: T.Tensor;
  strength?: number;
  /** Extra channels given to the model after x on dim 1 (the reference's concat_latent). */
  concatLatent?: T.Tensor;
  /** The transformer's dtype: x, the timestep and the guidance are rounded to it (default bf16, as the reference). */
  dtype?: ModelDType;
  /** UniPC variant (default bh1, FramePack's). */
  variant?: UniPCVariant;
  /** Where the noise and the latent state live (default: the device of `noise`, else cpu). */
  device?: T.DeviceType;
  callback?: (s: SamplerStepInfo) => void | Promise<void>;
  /** Checked before every step; aborting rejects with SamplingCancelledError. */
  signal?: AbortSignal;
  /** Called for every model call (statistics, tests). */
  onModelCall?: (ctx: ModelCallContext) => void;
}

/** Latent channels of HunyuanVideo's VAE (the reference hard-codes 16). */
export const LATENT_CHANNELS = 16;

function checkInt(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new SamplerOptionError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}
function checkNum(name: string, v: unknown, lo = -Infinity, hi = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw new SamplerOptionError(`${name} must be a number in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

/** The latent shape sample_hunyuan draws noise for: (B, 16, (frames + 3) // 4, height / 8, width / 8). */
export function latentShape(opts: { batchSize?: number; frames: number; height: number; width: number }): number[] {
  const B = checkInt('batchSize', opts.batchSize ?? 1, 1);
  const frames = checkInt('frames', opts.frames, 1);
  const height = checkInt('height', opts.height, 8);
  const width = checkInt('width', opts.width, 8);
  if (height % 8 || width % 8) throw new SamplerOptionError(`width and height must be multiples of 8 (the VAE's factor), got ${width}x${height}`);
  return [B, LATENT_CHANNELS, Math.floor((frames + 3) / 4), height / 8, width / 8];
}

/** The sigma schedule sample_hunyuan uses for a latent shape (before any img2img strength scaling). */
export function hunyuanSigmas(shape: readonly number[], steps: number, shift?: number | null): Float32Array {
  const [, , t, h, w] = shape;
  return fluxSigmasFromMu(steps, muFor({ seqLength: seqLengthOf(t, h, w), shift, expMax: 7.0 }));
}

const nextTick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Denoise one latent window. Resolves to the final x0 prediction (B, 16, T, H, W) f32, owned by the caller.
 * Tensors passed in (noise, latents, conditioning) stay owned by the caller.
 */
export async function sampleHunyuan<C>(opts: SampleHunyuanOptions<C>): Promise<T.Tensor> {
  if (typeof opts.model !== 'function') throw new SamplerOptionError('sampleHunyuan needs a model function');
  const shape = latentShape(opts);
  const steps = checkInt('steps', opts.steps ?? 25, 1);
  const cfg = checkNum('cfg', opts.cfg ?? 1);
  const gs = checkNum('gs', opts.gs ?? 6);
  const rs = checkNum('rs', opts.rs ?? 0, 0, 1);
  const strength = checkNum('strength', opts.strength ?? 1, 0, 1);
  const dtype = opts.dtype ?? 'bf16';
  if (!['f32', 'bf16', 'f16'].includes(dtype)) throw new SamplerOptionError(`dtype must be f32, bf16 or f16, got ${dtype}`);
  if (cfg !== 1 && opts.negative === undefined) throw new SamplerOptionError(`cfg = ${cfg} needs a negative conditioning (or use cfg = 1)`);
  const device = opts.device ?? opts.noise?.device ?? 'cpu';
  const B = shape[0];
  const sameShape = (t: T.Tensor, allowBatch1: boolean) =>
    t.shape.length === 5 && (t.shape[0] === B || (allowBatch1 && t.shape[0] === 1)) && t.shape.slice(1).every((d, i) => d === shape[i + 1]);

  if (opts.noise && (!sameShape(opts.noise, false) || opts.noise.dtype !== 'f32'))
    throw new SamplerShapeError(`noise must be f32 of shape [${shape}], got ${opts.noise.dtype} [${opts.noise.shape}]`);
  if (opts.initialLatent && !sameShape(opts.initialLatent, true))
    throw new SamplerShapeError(`initialLatent must have shape [${shape}] (or batch 1), got [${opts.initialLatent.shape}]`);
  if (opts.concatLatent) {
    const c = opts.concatLatent.shape;
    if (c.length !== 5 || (c[0] !== B && c[0] !== 1) || c[2] !== shape[2] || c[3] !== shape[3] || c[4] !== shape[4])
      throw new SamplerShapeError(`concatLatent must be (B, C, ${shape.slice(2).join(', ')}), got [${c}]`);
  }
  if (!opts.noise && !opts.generator && opts.seed === undefined) throw new SamplerOptionError('pass a generator, a seed or explicit noise');

  let sigmas = hunyuanSigmas(shape, steps, opts.shift);
  const owned: T.Tensor[] = [];
  const own = <X extends T.Tensor>(t: X) => (owned.push(t), t);
  try {
    // initial noise, drawn even for img2img (it advances the shared stream as the reference does)
    let latents: T.Tensor;
    if (opts.noise) latents = opts.noise.device === device ? opts.noise : own(T.toDevice(opts.noise, device));
    else latents = own(randn(shape, opts.generator ?? new TorchGenerator(opts.seed!), { device }));

    if (opts.initialLatent) {
      sigmas = sigmas.map((s) => f(s * f(strength)));
      const s0 = sigmas[0];
      const initial = opts.initialLatent;
      const init = own(T.tidy(() => T.toDevice(T.cast(initial, 'f32'), device)));
      latents = own(T.tidy(() => T.add(T.mul(init, f(1 - s0)), T.mul(latents, s0))));
    }
    const guidance = own(T.full([B], roundToDType(f(gs * 1000), dtype), { dtype: 'f32', device }));
    let concat: T.Tensor | undefined;
    if (opts.concatLatent) {
      const c = own(T.toDevice(opts.concatLatent, device));
      const cr = own(roundTensorTo(c, dtype));
      concat = cr.shape[0] === B ? cr : own(T.cat(Array.from({ length: B }, () => cr), 0));
    }

    const denoise = flowMatchDenoiser({
      model: opts.model,
      positive: opts.positive,
      negative: opts.negative,
      cfg,
      rs,
      dtype,
      guidance,
      concatLatent: concat,
      totalSteps: steps,
      onModelCall: opts.onModelCall,
    });

    const it = unipcSteps(denoise, latents, sigmas, opts.variant ?? 'bh1');
    let step = 0;
    try {
      for (;;) {
        if (opts.signal?.aborted) throw new SamplingCancelledError(step, steps, opts.signal.reason);
        const r = it.next();
        if (r.done) return r.value;
        step = r.value.step + 1;
        if (opts.callback) await opts.callback(r.value);
        // let other work (an abort from a UI or queue) run between steps
        if (opts.signal) await nextTick();
      }
    } finally {
      it.return(undefined as never); // frees the solver's tensors when stopped early (no-op when finished)
    }
  } finally {
    for (const t of new Set(owned)) t.dispose();
  }
}
