// FramePack's flow-matching UniPC ("better flow matching UniPC", uni_pc_fm.py): a multistep predictor-corrector
// on the data (x0) prediction with lambda = -ln(sigma). Orders ramp up 1, 2, 3, 3 ...; one model call per step;
// the result is the x0 prediction at the last evaluated sigma (sigma = 0 is never evaluated).
// The scalar coefficients are computed on the host in float32 (each op rounded, as the reference's 0-dim
// tensor math); the latent updates are tensor ops.
import * as T from '@framepack/tensor-core';
import { SamplerOptionError, SamplerShapeError } from './errors.js';
import { f } from './f32.js';
import { solveF32 } from './linalg.js';

export type UniPCVariant = 'bh1' | 'bh2';

/**
 * The data-prediction model the solver integrates: x0 = model(x, sigma). `sigma` is the f32 sigma of this
 * evaluation (the same for every batch row), `step` the sampler step it belongs to. The returned tensor must be a
 * fresh f32 tensor of x's shape; the solver owns it from then on.
 */
export type DenoiseFn = (x: T.Tensor, sigma: number, step: number) => T.Tensor;

export interface UniPCStep {
  step: number;
  totalSteps: number;
  /** The solver state after this step (owned by the solver: valid until the next step). */
  x: T.Tensor;
  /** The latest x0 prediction (owned by the solver). */
  denoised: T.Tensor;
}

/** Coefficients of one update of order k (all f32 values), exposed for inspection and tests. */
export interface UniPCCoefficients {
  order: number;
  /** sigma_t / sigma_prev: the multiplier of x. */
  ratio: number;
  /** expm1(-h): x0 enters the linear step as -phi1 * m0. */
  phi1: number;
  /** hh for bh1, expm1(hh) for bh2. */
  Bh: number;
  /** r_1 .. r_{k-1}, 1. */
  rks: number[];
  b: number[];
  /** Predictor weights of the k-1 differences (empty for k = 1). */
  rhosP: number[];
  /** Corrector weights: k-1 differences, then the new model's difference. */
  rhosC: number[];
}

const logf = (x: number) => f(Math.log(x));
const expm1f = (x: number) => f(Math.expm1(x));
/** lambda = -log(sigma) in float32. */
const lambdaOf = (s: number) => -logf(s);

/** The update coefficients for stepping from tPrev[last] to t with order k = tPrev.length (as uni_pc_fm.update_fn). */
export function unipcCoefficients(tPrev: readonly number[], t: number, variant: UniPCVariant = 'bh1'): UniPCCoefficients {
  const order = tPrev.length;
  if (order < 1 || order > 3) throw new SamplerOptionError(`UniPC order must be 1..3, got ${order}`);
  if (variant !== 'bh1' && variant !== 'bh2') throw new SamplerOptionError(`unknown UniPC variant '${variant}' (expected bh1 or bh2)`);
  const t0 = f(tPrev[order - 1]);
  const tt = f(t);
  const lam0 = lambdaOf(t0);
  const h = f(lambdaOf(tt) - lam0);
  const rks: number[] = [];
  for (let i = 1; i < order; i++) rks.push(f(f(lambdaOf(f(tPrev[order - 1 - i])) - lam0) / h));
  rks.push(1);
  const hh = -h;
  const phi1 = expm1f(hh);
  let hPhiK = f(f(phi1 / hh) - 1);
  let factorial = 1;
  const Bh = variant === 'bh1' ? hh : expm1f(hh);
  const R: number[][] = [];
  const b: number[] = [];
  for (let i = 1; i <= order; i++) {
    R.push(rks.map((r) => (i === 1 ? 1 : i === 2 ? r : f(r * r))));
    b.push(f(f(hPhiK * factorial) / Bh));
    factorial *= i + 1;
    hPhiK = f(f(hPhiK / hh) - f(1 / factorial));
  }
  let rhosP: number[] = [];
  if (order === 2) rhosP = [0.5];
  else if (order === 3) rhosP = solveF32([R[0].slice(0, 2), R[1].slice(0, 2)], b.slice(0, 2));
  const rhosC = order === 1 ? [0.5] : solveF32(R, b);
  return { order, ratio: f(tt / t0), phi1, Bh, rks, b, rhosP, rhosC };
}

/** sum_j w[j] * ds[j] (the reference's tensordot over the stacked differences), or null when empty. */
function weightedSum(ds: readonly T.Tensor[], w: readonly number[]): T.Tensor | null {
  let acc: T.Tensor | null = null;
  for (let j = 0; j < w.length; j++) {
    const term = T.mul(ds[j], w[j]);
    if (acc) {
      const next = T.add(acc, term);
      acc.dispose();
      term.dispose();
      acc = next;
    } else acc = term;
  }
  return acc;
}

/**
 * Run the solver step by step: yields after every step (so the caller can report progress or stop), returns the
 * final x0 prediction (owned by the caller). `noise` stays owned by the caller. Stopping early (return()) frees
 * the solver's tensors.
 */
export function* unipcSteps(model: DenoiseFn, noise: T.Tensor, sigmas: ArrayLike<number>, variant: UniPCVariant = 'bh1'): Generator<UniPCStep, T.Tensor, void> {
  if (variant !== 'bh1' && variant !== 'bh2') throw new SamplerOptionError(`unknown UniPC variant '${variant}' (expected bh1 or bh2)`);
  if (sigmas.length < 2) throw new SamplerOptionError(`UniPC needs at least 2 sigmas (1 step), got ${sigmas.length}`);
  for (let i = 0; i + 1 < sigmas.length; i++)
    if (!(sigmas[i] > 0) || !(sigmas[i] <= 1)) throw new SamplerOptionError(`sigma ${i} = ${sigmas[i]} is outside (0, 1]: only the last sigma may be 0`);
  const totalSteps = sigmas.length - 1;
  // the reference's min(3, len - 2); with one step that is 0 and the history keeps everything (list[-0:])
  const maxOrder = Math.min(3, sigmas.length - 2);
  const keep = maxOrder === 0 ? Infinity : maxOrder;
  const models: T.Tensor[] = [];
  const ts: number[] = [];
  let x = noise;
  const evaluate = (xi: T.Tensor, s: number, step: number): T.Tensor => {
    const m = model(xi, s, step);
    if (!m || !m.__isTensor || m.shape.length !== xi.shape.length || m.shape.some((d, k) => d !== xi.shape[k]))
      throw new SamplerShapeError(`the model returned ${m?.shape ? `[${m.shape}]` : String(m)} for an input of shape [${xi.shape}]`);
    return m;
  };
  try {
    for (let i = 0; i < totalSteps; i++) {
      const t = f(sigmas[i]);
      if (i === 0) {
        models.push(evaluate(x, t, i));
        ts.push(t);
      } else {
        const order = i < maxOrder ? i : maxOrder;
        const hist = models.slice(-order);
        const c = unipcCoefficients(ts.slice(-order), t, variant);
        const m0 = hist[order - 1];
        // D_j = (M[-(j+1)] - m0) / r_j, and the linear (flow-DDIM) part of the step
        const [ds, xLin, xPred] = T.tidy(() => {
          const ds = c.rks.slice(0, order - 1).map((r, j) => T.div(T.sub(hist[order - 2 - j], m0), T.scalar(r, { device: m0.device })));
          const xLin = T.sub(T.mul(x, c.ratio), T.mul(m0, c.phi1));
          const pred = weightedSum(ds, c.rhosP);
          const xPred = pred ? T.sub(xLin, T.mul(pred, c.Bh)) : xLin;
          return [ds, xLin, xPred] as const;
        });
        let mt: T.Tensor;
        try {
          mt = evaluate(xPred, t, i); // outside tidy: the model may keep tensors it creates (caches)
        } catch (e) {
          T.disposeAll([ds, xLin, xPred]);
          throw e;
        }
        const xNext = T.tidy(() => {
          const corr = weightedSum(ds, c.rhosC.slice(0, order - 1));
          const d1t = T.mul(T.sub(mt, m0), c.rhosC[order - 1]);
          const total = corr ? T.add(corr, d1t) : d1t;
          return T.sub(xLin, T.mul(total, c.Bh));
        });
        T.disposeAll([ds, xLin, xPred]);
        if (x !== noise) x.dispose();
        x = xNext;
        models.push(mt);
        ts.push(t);
      }
      while (models.length > keep) models.shift()!.dispose();
      ts.splice(0, Math.max(0, ts.length - keep));
      yield { step: i, totalSteps, x, denoised: models[models.length - 1] };
    }
    return models.pop()!;
  } finally {
    for (const m of models) m.dispose();
    if (x !== noise) x.dispose();
  }
}

/** sample_unipc: run every step and return the final x0 prediction (synchronous; see unipcSteps for control). */
export function sampleUniPC(
  model: DenoiseFn,
  noise: T.Tensor,
  sigmas: ArrayLike<number>,
  opts: { variant?: UniPCVariant; callback?: (s: UniPCStep) => void } = {},
): T.Tensor {
  const it = unipcSteps(model, noise, sigmas, opts.variant ?? 'bh1');
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    opts.callback?.(r.value);
  }
}
