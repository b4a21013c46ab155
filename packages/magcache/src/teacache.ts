/**
 * TeaCache as FramePack runs it inside the packed DiT (`initialize_teacache` / forward): the relative L1 change of
 * block 0's modulated input between consecutive steps, rescaled by a polynomial fitted offline, is accumulated; the
 * block stack runs when the sum reaches the threshold (and the sum restarts), otherwise the previous residual is
 * reused. The first and the last step always run.
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { StepSkipOptionsError, StepSkipStateError } from './errors.js';
import type { StepSkipContext } from './hook.js';
import { ResidualCacheHook } from './residual-cache.js';

/** FramePack's rescale polynomial, highest degree first (np.poly1d order). */
export const FRAMEPACK_TEACACHE_COEFFICIENTS: readonly number[] = [7.33226126e2, -4.01131952e2, 6.75869174e1, -3.149878, 9.61237896e-2];
/** FramePack's default threshold (its comment: 0.1 ~ 1.6x, 0.15 ~ 2.1x speed-up). */
export const FRAMEPACK_TEACACHE_THRESHOLD = 0.15;

export interface TeaCacheOptions {
  /** rel_l1_thresh: compute once the accumulated rescaled distance reaches this (default 0.15). */
  relL1Threshold?: number;
  /** Rescale polynomial, highest degree first (default FramePack's). */
  coefficients?: readonly number[];
}

export interface TeaCacheTraceEntry {
  step: number;
  /** mean|m - m_prev| / mean|m_prev| (absent on forced steps). */
  relL1?: number;
  /** Accumulated rescaled distance after this step's decision (0 after a compute). */
  accumulated: number;
  skipped: boolean;
}

/** Evaluate a polynomial given highest degree first, in the same order as numpy's polyval (Horner). */
export function polyval(coefficients: readonly number[], x: number): number {
  let y = 0;
  for (const c of coefficients) y = y * x + c;
  return y;
}

/**
 * mean(|a - b|) / mean(|b|) as the reference computes it: reductions and the division in the tensors' dtype, then
 * read back once (`.item()`), so bf16 models get bf16-rounded distances like FramePack's.
 */
export function relativeL1(current: Tensor, previous: Tensor): number {
  return T.tidy(() => {
    const meanAbs = (x: Tensor) => T.mean(T.reshape(T.abs(x), [x.numel]), 0);
    return T.div(meanAbs(T.sub(current, previous)), meanAbs(previous)).item();
  });
}

export class TeaCache extends ResidualCacheHook {
  readonly relL1Threshold: number;
  readonly coefficients: readonly number[];
  #previous: Tensor | null = null;
  #accumulated = 0;
  #trace: TeaCacheTraceEntry[] = [];

  constructor(opts: TeaCacheOptions = {}) {
    super();
    this.relL1Threshold = opts.relL1Threshold ?? FRAMEPACK_TEACACHE_THRESHOLD;
    this.coefficients = [...(opts.coefficients ?? FRAMEPACK_TEACACHE_COEFFICIENTS)];
    if (!(Number.isFinite(this.relL1Threshold) && this.relL1Threshold >= 0)) {
      throw new StepSkipOptionsError(`TeaCache relL1Threshold must be a finite number >= 0, got ${opts.relL1Threshold}`);
    }
    if (this.coefficients.length === 0 || this.coefficients.some((c) => !Number.isFinite(c))) {
      throw new StepSkipOptionsError('TeaCache coefficients must be a non-empty list of finite numbers (highest degree first)');
    }
  }

  /** Per-step distances and decisions of the current section. */
  get trace(): readonly TeaCacheTraceEntry[] {
    return this.#trace;
  }

  protected decide(ctx: StepSkipContext, canSkip: boolean): boolean {
    const m = ctx.modulatedInput;
    if (this.#previous && (this.#previous.numel !== m.numel || this.#previous.dtype !== m.dtype)) {
      throw new StepSkipStateError(`modulated input [${m.shape}] ${m.dtype} does not match the previous step's [${this.#previous.shape}] ${this.#previous.dtype}`);
    }
    let compute: boolean;
    let relL1: number | undefined;
    if (ctx.step === 0 || ctx.step === ctx.totalSteps - 1 || !this.#previous) {
      compute = true;
    } else {
      relL1 = relativeL1(m, this.#previous);
      this.#accumulated += polyval(this.coefficients, relL1);
      compute = this.#accumulated >= this.relL1Threshold || !canSkip;
    }
    if (compute) this.#accumulated = 0;
    // clone + keep: the DiT may dispose its modulated input after the call.
    this.#previous?.dispose();
    this.#previous = T.keep(T.clone(m));
    this.#trace.push({ step: ctx.step, relL1, accumulated: this.#accumulated, skipped: !compute });
    return !compute;
  }

  protected resetSection(): void {
    this.#previous?.dispose();
    this.#previous = null;
    this.#accumulated = 0;
    this.#trace = [];
  }
}
