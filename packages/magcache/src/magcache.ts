/**
 * MagCache as FramePack-Studio runs it (diffusers_helper/models/mag_cache.py): offline-calibrated magnitude ratios of
 * the block-stack residual say how much the residual changes from one step to the next. After the retained first
 * steps, a step reuses the cached residual while the accumulated error sum(|1 - prod ratios|) over the consecutive
 * skips stays within the threshold, at most K steps are skipped in a row, and the step's own ratio is within 0.06 of
 * 1 (the FramePack variant's extra gate). A step that fails the test is computed and restarts the accumulation.
 *
 * Unlike Studio, the ratio index is the sampler step and each CFG branch has its own hook (Studio advances its index
 * once per transformer call, so with cfg != 1 it walks the table twice as fast and both branches share a residual).
 */
import { StepSkipOptionsError } from './errors.js';
import type { StepSkipContext } from './hook.js';
import { ResidualCacheHook } from './residual-cache.js';
import { STUDIO_MAG_RATIOS } from './studio-ratios.js';
import { nearestStepInterpolation, selectMagRatios, type MagRatiosSelection, type MagRatiosTable } from './table.js';

export interface MagCacheOptions {
  /** Calibration family: 'Original' or 'F1' in the shipped table (see modelFamilyFor). Default 'Original'. */
  modelFamily?: string;
  /** Output size in pixels; only selects the calibration table (resolution group nearest (width+height)/2). */
  width: number;
  height: number;
  /** Accumulated error threshold (Studio default 0.1). */
  threshold?: number;
  /** K: most consecutive skipped steps (Studio default 2). */
  maxConsecutiveSkips?: number;
  /** The first floor(retentionRatio * steps) steps always run (Studio default 0.25). */
  retentionRatio?: number;
  /** A step is skipped only if |1 - ratio| <= this (FramePack MagCache's fixed 0.06). */
  maxRatioDeviation?: number;
  /** Calibration table (default Studio's shipped MAG_RATIOS_DB). */
  table?: MagRatiosTable;
  /** An explicit ratio curve instead of a table lookup (resampled by nearest index when its length differs from the steps). */
  ratios?: readonly number[];
}

export const MAGCACHE_DEFAULTS = { threshold: 0.1, maxConsecutiveSkips: 2, retentionRatio: 0.25, maxRatioDeviation: 0.06 } as const;

export interface MagCacheTraceEntry {
  step: number;
  ratio: number;
  /** Accumulation state after this step's decision (reset to 1 / 0 / 0 when the step computed). */
  accumulatedRatio: number;
  accumulatedError: number;
  accumulatedSteps: number;
  skipped: boolean;
}

export class MagCache extends ResidualCacheHook {
  readonly modelFamily: string;
  readonly width: number;
  readonly height: number;
  readonly threshold: number;
  readonly maxConsecutiveSkips: number;
  readonly retentionRatio: number;
  readonly maxRatioDeviation: number;
  readonly #table: MagRatiosTable;
  readonly #explicit: readonly number[] | undefined;
  readonly #selections = new Map<number, MagRatiosSelection>();
  #accRatio = 1;
  #accError = 0;
  #accSteps = 0;
  #trace: MagCacheTraceEntry[] = [];

  constructor(opts: MagCacheOptions) {
    super();
    this.modelFamily = opts.modelFamily ?? 'Original';
    this.width = opts.width;
    this.height = opts.height;
    this.threshold = opts.threshold ?? MAGCACHE_DEFAULTS.threshold;
    this.maxConsecutiveSkips = opts.maxConsecutiveSkips ?? MAGCACHE_DEFAULTS.maxConsecutiveSkips;
    this.retentionRatio = opts.retentionRatio ?? MAGCACHE_DEFAULTS.retentionRatio;
    this.maxRatioDeviation = opts.maxRatioDeviation ?? MAGCACHE_DEFAULTS.maxRatioDeviation;
    this.#table = opts.table ?? STUDIO_MAG_RATIOS;
    this.#explicit = opts.ratios ? [...opts.ratios] : undefined;
    if (!(this.width > 0 && this.height > 0)) throw new StepSkipOptionsError(`MagCache width and height must be positive, got ${opts.width}x${opts.height}`);
    if (!(Number.isFinite(this.threshold) && this.threshold >= 0)) throw new StepSkipOptionsError(`MagCache threshold must be a finite number >= 0, got ${opts.threshold}`);
    if (!(Number.isInteger(this.maxConsecutiveSkips) && this.maxConsecutiveSkips >= 0)) {
      throw new StepSkipOptionsError(`MagCache maxConsecutiveSkips must be an integer >= 0, got ${opts.maxConsecutiveSkips}`);
    }
    if (!(this.retentionRatio >= 0 && this.retentionRatio <= 1)) throw new StepSkipOptionsError(`MagCache retentionRatio must be in [0, 1], got ${opts.retentionRatio}`);
    if (!(Number.isFinite(this.maxRatioDeviation) && this.maxRatioDeviation >= 0)) {
      throw new StepSkipOptionsError(`MagCache maxRatioDeviation must be a finite number >= 0, got ${opts.maxRatioDeviation}`);
    }
    if (this.#explicit && (this.#explicit.length === 0 || this.#explicit.some((r) => !Number.isFinite(r)))) {
      throw new StepSkipOptionsError('MagCache ratios must be a non-empty list of finite numbers');
    }
    // Fail at construction, not mid-sampling, when the table has no entry for the family.
    if (!this.#explicit) this.selection(25);
  }

  /** The ratio curve (and where it came from) used for a run of `steps` steps. */
  selection(steps: number): MagRatiosSelection {
    let s = this.#selections.get(steps);
    if (!s) {
      if (this.#explicit) {
        const e = this.#explicit;
        s = { ratios: e.length === steps ? [...e] : nearestStepInterpolation(e, steps), family: this.modelFamily, resolutionGroup: NaN, calibratedSteps: e.length, resampled: e.length !== steps };
      } else {
        s = selectMagRatios(this.#table, { family: this.modelFamily, width: this.width, height: this.height, steps });
      }
      this.#selections.set(steps, s);
    }
    return s;
  }
  ratiosFor(steps: number): number[] {
    return [...this.selection(steps).ratios];
  }
  /** Steps before this index always run (Python's int(retention_ratio * steps)). */
  retainedSteps(steps: number): number {
    return Math.trunc(this.retentionRatio * steps);
  }

  /** Per-step accumulation and decisions of the current section. */
  get trace(): readonly MagCacheTraceEntry[] {
    return this.#trace;
  }

  protected decide(ctx: StepSkipContext, canSkip: boolean): boolean {
    const { step, totalSteps } = ctx;
    const ratio = this.selection(totalSteps).ratios[step];
    let skip = false;
    if (step >= this.retainedSteps(totalSteps) && step >= 1) {
      this.#accRatio *= ratio;
      this.#accError += Math.abs(1 - this.#accRatio);
      this.#accSteps += 1;
      skip = canSkip && this.#accError <= this.threshold && this.#accSteps <= this.maxConsecutiveSkips && Math.abs(1 - ratio) <= this.maxRatioDeviation;
      if (!skip) {
        // A computed step restarts the accumulation; its own ratio is not carried over.
        this.#accRatio = 1;
        this.#accError = 0;
        this.#accSteps = 0;
      }
    }
    this.#trace.push({ step, ratio, accumulatedRatio: this.#accRatio, accumulatedError: this.#accError, accumulatedSteps: this.#accSteps, skipped: skip });
    return skip;
  }

  protected resetSection(): void {
    this.#accRatio = 1;
    this.#accError = 0;
    this.#accSteps = 0;
    this.#trace = [];
  }
}
