// The flow-matching model wrapper (FramePack's fm_wrapper): turns a velocity-predicting transformer into the
// x0-predicting model UniPC integrates, with real CFG (a negative pass only when cfg != 1), guidance rescale and
// the rounding of the model's inputs to the transformer's dtype.
import * as T from '@framepack/tensor-core';
import { SamplerOptionError, SamplerShapeError } from './errors.js';
import { f } from './f32.js';
import type { DenoiseFn } from './unipc.js';

export interface ModelCallContext {
  step: number;
  totalSteps: number;
  branch: 'positive' | 'negative';
  /** Distilled guidance gs*1000 per batch row, f32 (B), rounded to the model dtype (gs = 10 gives 9984 in bf16). */
  guidance?: T.Tensor;
}

/**
 * The transformer as the sampler sees it: `x` (B, C, T, H, W) f32 (values rounded to the model dtype; with a
 * concat latent, its channels follow x's), `timestep` (B) f32 = sigma*1000 rounded to the model dtype.
 * Returns the flow (velocity) prediction with x's latent shape (B, 16, T, H, W), as a fresh tensor: the sampler
 * disposes it. The timestep/guidance tensors stay owned by the sampler.
 */
export type ModelFn<C> = (x: T.Tensor, timestep: T.Tensor, cond: C, ctx: ModelCallContext) => T.Tensor;

/** Storage dtype of the transformer: what its inputs are rounded to. */
export type ModelDType = 'f32' | 'bf16' | 'f16';

/** A number rounded to the model dtype (as `torch.tensor(v, f32).to(dtype)`), returned as a JS number. */
export function roundToDType(v: number, dtype: ModelDType): number {
  const x = f(v);
  if (dtype === 'bf16') return T.bf16BitsToF32(T.f32ToBf16Bits(x));
  if (dtype === 'f16') return T.f16BitsToF32(T.f32ToF16Bits(x));
  return x;
}

/** A tensor's values rounded to the model dtype, kept as f32 (a view of x itself for f32). */
export function roundTensorTo(x: T.Tensor, dtype: ModelDType): T.Tensor {
  const x32 = x.dtype === 'f32' ? T.reshape(x, x.shape) : T.cast(x, 'f32');
  if (dtype === 'f32') return x32;
  const low = T.cast(x32, dtype);
  x32.dispose();
  const back = T.cast(low, 'f32');
  low.dispose();
  return back;
}

/**
 * rescale_noise_cfg: phi * cfg * (std(pos) / std(cfg)) + (1 - phi) * cfg, std over every non-batch dim with
 * Bessel's correction (torch.std's default). phi = 0 returns a view of `cfg`.
 */
export function rescaleNoiseCfg(cfg: T.Tensor, pos: T.Tensor, phi: number): T.Tensor {
  if (phi === 0) return T.reshape(cfg, cfg.shape);
  return T.tidy(() => {
    const B = cfg.shape[0];
    const bshape = [B, ...cfg.shape.slice(1).map(() => 1)];
    const std = (t: T.Tensor) => T.sqrt(T.variance(T.reshape(t, [B, -1]), 1, { correction: 1 }));
    const ratio = T.reshape(T.div(std(pos), std(cfg)), bshape);
    const rescaled = T.mul(cfg, ratio);
    return T.add(T.mul(rescaled, f(phi)), T.mul(cfg, f(1 - phi)));
  });
}

export interface FlowDenoiserOptions<C> {
  model: ModelFn<C>;
  positive: C;
  negative?: C;
  /** Real CFG scale; 1 runs only the positive branch. */
  cfg: number;
  /** Guidance rescale phi (0 = off). */
  rs: number;
  dtype: ModelDType;
  /** gs*1000 per batch row (already rounded to the model dtype), passed to the model as ctx.guidance. */
  guidance?: T.Tensor;
  /** Extra channels concatenated after x on dim 1 (the reference's concat_latent), already rounded. */
  concatLatent?: T.Tensor;
  totalSteps: number;
  /** Called once per model call (for tests and statistics). */
  onModelCall?: (ctx: ModelCallContext) => void;
}

/** fm_wrapper: the x0 prediction x_r - v * sigma, where x_r is x rounded to the model dtype (t_scale = 1000). */
export function flowMatchDenoiser<C>(o: FlowDenoiserOptions<C>): DenoiseFn {
  if (!Number.isFinite(o.cfg)) throw new SamplerOptionError(`cfg must be a finite number, got ${o.cfg}`);
  if (!Number.isFinite(o.rs)) throw new SamplerOptionError(`rs (guidance rescale) must be a finite number, got ${o.rs}`);
  if (o.cfg !== 1 && o.negative === undefined) throw new SamplerOptionError(`cfg = ${o.cfg} needs a negative conditioning (or use cfg = 1)`);
  return (x, sigma, step) => {
    const B = x.shape[0];
    const xr = roundTensorTo(x, o.dtype);
    const timestep = T.full([B], roundToDType(f(sigma) * 1000, o.dtype), { dtype: 'f32', device: x.device });
    const hidden = o.concatLatent ? T.cat([xr, o.concatLatent], 1) : xr;
    const call = (branch: 'positive' | 'negative', cond: C): T.Tensor => {
      const ctx: ModelCallContext = { step, totalSteps: o.totalSteps, branch, guidance: o.guidance };
      o.onModelCall?.(ctx);
      const out = o.model(hidden, timestep, cond, ctx);
      if (!out?.__isTensor || out.shape.length !== x.shape.length || out.shape.some((d, i) => d !== x.shape[i]))
        throw new SamplerShapeError(`the model's ${branch} prediction has shape ${out?.shape ? `[${out.shape}]` : String(out)}, expected [${x.shape}]`);
      if (out.dtype === 'f32') return out;
      const o32 = T.cast(out, 'f32');
      out.dispose();
      return o32;
    };
    let pos: T.Tensor | undefined, neg: T.Tensor | undefined;
    try {
      pos = call('positive', o.positive);
      if (o.cfg !== 1) neg = call('negative', o.negative as C);
      const p = pos, n = neg;
      return T.tidy(() => {
        // with cfg == 1 the reference's zeros + 1 * (pos - 0) is exactly pos
        const predCfg = n ? T.add(n, T.mul(T.sub(p, n), f(o.cfg))) : p;
        const pred = rescaleNoiseCfg(predCfg, p, o.rs);
        return T.sub(xr, T.mul(pred, f(sigma)));
      });
    } finally {
      pos?.dispose();
      neg?.dispose();
      timestep.dispose();
      if (hidden !== xr) hidden.dispose();
      xr.dispose();
    }
  };
}
