/**
 * What TeaCache, MagCache and the calibrator share: the per-step protocol of the DiT's step-skip hook, section
 * boundaries, the cached block-stack residual and the stats.
 *
 * Steps come from the sampler (ctx.step), not from counting forward calls as the Python references do: with real
 * CFG the caller keeps one hook per branch (see `createBranchHooks`), so each branch advances once per step and
 * caches its own residual. Step 0 starts a new section (FramePack samples every section from step 0), which drops
 * the cached state, so a hook can be reused across sections and after a cancelled run.
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { StepSkipStateError } from './errors.js';
import type { StepSkipContext, StepSkipHook } from './hook.js';
import { SkipStats, type StepSkipStats } from './stats.js';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export abstract class ResidualCacheHook implements StepSkipHook {
  protected readonly skipStats = new SkipStats();
  #residual: Tensor | null = null;
  #lastStep = -1;
  #pending: 'skip' | 'compute' | null = null;

  /** Policy decision for this step; `canSkip` is false when no residual is cached yet (the step must compute). */
  protected abstract decide(ctx: StepSkipContext, canSkip: boolean): boolean;
  /** Drop per-section policy state (called at step 0 and on dispose). */
  protected abstract resetSection(): void;
  /** Called with the fresh residual of a computed step, before it replaces the previous one (calibration). */
  protected onResidual(_step: number, _residual: Tensor, _previous: Tensor | null): void {}

  shouldSkip(ctx: StepSkipContext): boolean {
    const { step, totalSteps } = ctx;
    if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new StepSkipStateError(`totalSteps must be a positive integer, got ${totalSteps} (pass step and totalSteps to the DiT forward with the hook)`);
    if (!Number.isInteger(step) || step < 0 || step >= totalSteps) throw new StepSkipStateError(`step must be an integer in [0, ${totalSteps}), got ${step}`);
    if (step === 0 || this.#lastStep < 0) this.#beginSection();
    else if (step <= this.#lastStep) {
      throw new StepSkipStateError(
        `step ${step} came after step ${this.#lastStep}: a hook follows one sampling run; with CFG keep one hook per branch (createBranchHooks)`,
      );
    }
    this.#lastStep = step;
    const canSkip = this.#residual !== null && sameShape(this.#residual.shape, ctx.hidden.shape);
    const skip = this.decide(ctx, canSkip) && canSkip;
    this.#pending = skip ? 'skip' : 'compute';
    this.skipStats.add(step, skip);
    return skip;
  }

  applySkip(hidden: Tensor): Tensor {
    if (this.#pending !== 'skip' || !this.#residual) throw new StepSkipStateError('applySkip() is only valid right after shouldSkip() returned true');
    this.#pending = null;
    if (!sameShape(hidden.shape, this.#residual.shape)) {
      throw new StepSkipStateError(`hidden state [${hidden.shape}] does not match the cached residual [${this.#residual.shape}]`);
    }
    return T.add(hidden, this.#residual);
  }

  record(before: Tensor, after: Tensor): void {
    if (this.#pending !== 'compute') throw new StepSkipStateError('record() is only valid right after shouldSkip() returned false');
    this.#pending = null;
    if (!sameShape(before.shape, after.shape)) throw new StepSkipStateError(`record(): before [${before.shape}] and after [${after.shape}] differ in shape`);
    // keep(): the DiT runs its forward inside tidy(); the residual must outlive it.
    const residual = T.keep(T.sub(after, before));
    this.onResidual(this.#lastStep, residual, this.#residual);
    this.#residual?.dispose();
    this.#residual = residual;
  }

  /** Computed/skipped steps per section and totals. */
  get stats(): StepSkipStats {
    return this.skipStats.snapshot();
  }
  /** Release the cached tensors (the hook can still be used; it starts over at its next step 0). */
  dispose(): void {
    this.#residual?.dispose();
    this.#residual = null;
    this.#lastStep = -1;
    this.#pending = null;
    this.resetSection();
  }

  #beginSection(): void {
    this.#residual?.dispose();
    this.#residual = null;
    this.#pending = null;
    this.resetSection();
    this.skipStats.beginSection();
  }
}
