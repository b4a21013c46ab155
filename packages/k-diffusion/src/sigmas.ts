// The flow-matching sigma schedule of FramePack's sample_hunyuan, reproduced bit for bit: mu in float64 as Python
// computes it, the schedule in float32 with each tensor op rounded separately, in the order PyTorch runs them.
import { SamplerOptionError } from './errors.js';
import { f } from './f32.js';

/** The line through (256, 0.5) and (4096, 1.15) that maps the noisy token count to mu, clamped at ln(expMax). */
export interface FluxMuOptions {
  x1?: number;
  y1?: number;
  x2?: number;
  y2?: number;
  /** mu is clamped to ln(expMax); FramePack passes 7. */
  expMax?: number;
}

/** calculate_flux_mu: mu = k*seq + b through (x1, y1), (x2, y2), then min(mu, ln(expMax)); float64. */
export function calculateFluxMu(seqLength: number, opts: FluxMuOptions = {}): number {
  const { x1 = 256, y1 = 0.5, x2 = 4096, y2 = 1.15, expMax = 7.0 } = opts;
  if (!Number.isFinite(seqLength) || seqLength < 0) throw new SamplerOptionError(`sequence length must be a non-negative number, got ${seqLength}`);
  if (!(expMax > 0)) throw new SamplerOptionError(`expMax must be > 0, got ${expMax}`);
  const k = (y2 - y1) / (x2 - x1);
  const b = y1 - k * x1;
  const mu = k * seqLength + b;
  return Math.min(mu, Math.log(expMax));
}

/** The noisy token count of a latent (T, H, W) with FramePack's 1x2x2 patches: T*H*W // 4. */
export function seqLengthOf(latentFrames: number, latentHeight: number, latentWidth: number): number {
  return Math.floor((latentFrames * latentHeight * latentWidth) / 4);
}

/** mu from an explicit shift (mu = ln(shift)), or from the sequence length when no shift is given. */
export function muFor(opts: { seqLength: number; shift?: number | null; expMax?: number }): number {
  if (opts.shift !== undefined && opts.shift !== null) {
    if (!(opts.shift > 0) || !Number.isFinite(opts.shift)) throw new SamplerOptionError(`shift must be a positive number, got ${opts.shift}`);
    return Math.log(opts.shift);
  }
  return calculateFluxMu(opts.seqLength, { expMax: opts.expMax ?? 7.0 });
}

/** torch.linspace(start, end, steps) in float32 on the CPU: start + step*i for the first half, end - step*(steps-1-i) after. */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  if (!Number.isInteger(steps) || steps < 1) throw new SamplerOptionError(`linspace needs an integer number of points >= 1, got ${steps}`);
  const out = new Float32Array(steps);
  const s = f(start), e = f(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f(f(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < halfway ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)));
  return out;
}

/**
 * flux_time_shift(t, mu) = e^mu / (e^mu + (1/t - 1)) on a float32 tensor, as PyTorch evaluates it:
 * 1/t is reciprocal(t)*1, the Python float e^mu is rounded to f32 inside each op, and e^mu / c is reciprocal(c)*e^mu.
 * (The reference's `** sigma` with sigma = 1.0 is an exact copy.) t = 0 gives 0.
 */
export function fluxTimeShift(t: Float32Array, mu: number): Float32Array {
  const em = f(Math.exp(mu));
  const out = new Float32Array(t.length);
  for (let i = 0; i < t.length; i++) {
    const a = f(1 / t[i]);
    const b = f(a - 1);
    const c = f(b + em);
    out[i] = f(f(1 / c) * em);
  }
  return out;
}

/** get_flux_sigmas_from_mu: the n+1 sigmas from 1 down to 0 (float32). */
export function fluxSigmasFromMu(steps: number, mu: number): Float32Array {
  if (!Number.isInteger(steps) || steps < 1) throw new SamplerOptionError(`steps must be an integer >= 1, got ${steps}`);
  if (!Number.isFinite(mu)) throw new SamplerOptionError(`mu must be finite, got ${mu}`);
  return fluxTimeShift(linspaceF32(1, 0, steps + 1), mu);
}

export interface FluxSigmasOptions {
  steps: number;
  /** Noisy token count (T*H*W//4 of the latent); used when no shift is given. */
  seqLength?: number;
  /** Explicit shift: mu = ln(shift). FramePack leaves it unset (mu from the sequence length). */
  shift?: number | null;
  /** Clamp of the sequence-length mu, ln(expMax) (FramePack: 7). */
  expMax?: number;
}

/** The sampler's sigma schedule: `steps + 1` float32 values from 1 to 0, and the mu they came from. */
export function fluxSigmas(opts: FluxSigmasOptions): { sigmas: Float32Array; mu: number } {
  if ((opts.shift === undefined || opts.shift === null) && opts.seqLength === undefined)
    throw new SamplerOptionError('fluxSigmas needs either a shift or the sequence length');
  const mu = muFor({ seqLength: opts.seqLength ?? 0, shift: opts.shift, expMax: opts.expMax });
  return { sigmas: fluxSigmasFromMu(opts.steps, mu), mu };
}
