/**
 * MagCache calibration: a hook that runs every step and measures how the block-stack residual changes between
 * consecutive steps, and helpers that turn a run into a table entry.
 *
 * Per step t >= 1, with R_t the residual of shape (B, L, C) and norms taken per token over the channels (as Studio's
 * `_update_calibration_stats`): the mean of |R_t| / |R_(t-1)| over all tokens (the magnitude ratio that goes into the
 * table), its standard deviation (unbiased), and the mean cosine distance 1 - cos(R_t, R_(t-1)); each rounded to 5
 * decimals like Python's round(). The curve is [1, ratio_1, ..., ratio_(steps-1)]. Calibrate one section per job:
 * statistics restart at every step 0, as in Studio.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { StepSkipOptionsError, StepSkipStateError } from './errors.js';
import type { StepSkipContext } from './hook.js';
import { ResidualCacheHook } from './residual-cache.js';
import { roundDecimalsHalfEven } from './rounding.js';
import { validateMagRatiosTable, withMagRatios, type MagRatiosTable } from './table.js';

/** torch.nn.functional.cosine_similarity's eps as Studio calls it. */
const COSINE_EPS = 1e-8;

export interface ResidualChange {
  /** mean over tokens of |R_t| / |R_(t-1)| (per-token L2 norm over the last dim). */
  normRatio: number;
  /** unbiased std of the same per-token ratios. */
  normStd: number;
  /** mean over tokens of 1 - cos(R_t, R_(t-1)). */
  cosDistance: number;
}

/** The statistics of one pair of consecutive residuals, unrounded (tensor-core ops; the result is read back once). */
export function residualChange(current: Tensor, previous: Tensor): ResidualChange {
  if (current.shape.join() !== previous.shape.join()) throw new StepSkipStateError(`residual shapes differ: [${current.shape}] vs [${previous.shape}]`);
  return T.tidy(() => {
    const last = current.ndim - 1;
    const nCur = T.sqrt(T.sum(T.square(current), last));
    const nPrev = T.sqrt(T.sum(T.square(previous), last));
    const ratio = T.reshape(T.div(nCur, nPrev), [nCur.numel]);
    const normRatio = T.mean(ratio, 0).item();
    const normStd = ratio.numel > 1 ? Math.sqrt(T.variance(ratio, 0, { correction: 1 }).item()) : NaN;
    const dot = T.sum(T.mul(current, previous), last);
    const cos = T.div(dot, T.mul(T.maximum(nCur, COSINE_EPS), T.maximum(nPrev, COSINE_EPS)));
    const cosDistance = T.mean(T.reshape(T.affine(cos, -1, 1), [cos.numel]), 0).item();
    return { normRatio, normStd, cosDistance };
  });
}

export interface CalibrationOptions {
  modelFamily?: string;
  /** Output size in pixels (keys the result: resolution group = (width + height) / 2). */
  width: number;
  height: number;
  /** Decimals kept (Studio: 5). */
  decimals?: number;
}

export interface CalibrationResult {
  modelFamily: string;
  width: number;
  height: number;
  resolutionGroup: number;
  steps: number;
  /** [1, ratio_1, ...]: the table entry. */
  ratios: number[];
  normStd: number[];
  cosDistance: number[];
}

/** A hook that never skips and records the residual statistics of the current section. */
export class MagCacheCalibrator extends ResidualCacheHook {
  readonly modelFamily: string;
  readonly width: number;
  readonly height: number;
  readonly decimals: number;
  #changes: ResidualChange[] = [];
  #totalSteps = 0;
  #steps: number[] = [];

  constructor(opts: CalibrationOptions) {
    super();
    this.modelFamily = opts.modelFamily ?? 'Original';
    this.width = opts.width;
    this.height = opts.height;
    this.decimals = opts.decimals ?? 5;
    if (!(this.width > 0 && this.height > 0)) throw new StepSkipOptionsError(`calibration width and height must be positive, got ${opts.width}x${opts.height}`);
    if (!Number.isInteger(this.decimals) || this.decimals < 0 || this.decimals > 15) throw new StepSkipOptionsError(`decimals must be an integer in [0, 15], got ${opts.decimals}`);
  }

  protected decide(ctx: StepSkipContext): boolean {
    this.#totalSteps = ctx.totalSteps;
    return false;
  }
  protected override onResidual(step: number, residual: Tensor, previous: Tensor | null): void {
    if (step >= 1 && previous) this.#changes.push(residualChange(residual, previous));
    this.#steps.push(step);
  }
  protected resetSection(): void {
    this.#changes = [];
    this.#steps = [];
    this.#totalSteps = 0;
  }

  /** Unrounded statistics of the current section, one per step from step 1 on. */
  get changes(): readonly ResidualChange[] {
    return this.#changes;
  }
  /** True once every step of the current section has been recorded. */
  get complete(): boolean {
    return this.#totalSteps > 0 && this.#steps.length === this.#totalSteps && this.#steps.every((s, i) => s === i);
  }

  /** The calibration of the current section; throws unless every step 0..steps-1 was recorded. */
  result(): CalibrationResult {
    if (!this.complete) {
      throw new StepSkipStateError(`calibration needs every step of one sampling run recorded in order; got steps [${this.#steps}] of ${this.#totalSteps}`);
    }
    const r = (x: number) => roundDecimalsHalfEven(x, this.decimals);
    return {
      modelFamily: this.modelFamily,
      width: this.width,
      height: this.height,
      resolutionGroup: (this.width + this.height) / 2,
      steps: this.#totalSteps,
      ratios: [1, ...this.#changes.map((c) => r(c.normRatio))],
      normStd: this.#changes.map((c) => r(c.normStd)),
      cosDistance: this.#changes.map((c) => r(c.cosDistance)),
    };
  }
}

/** `base` (default: empty) with the result's curve added at [family][resolution group][steps]. */
export function calibrationTable(result: CalibrationResult, base: MagRatiosTable = {}): MagRatiosTable {
  return withMagRatios(base, result.modelFamily, result.resolutionGroup, result.ratios);
}

/** Read a calibration table written by writeCalibrationFile (validated). */
export function readCalibrationFile(path: string): MagRatiosTable {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new StepSkipOptionsError(`cannot read MagCache calibration file ${path}: ${(e as Error).message}`);
  }
  return validateMagRatiosTable(parsed);
}

/**
 * Add a calibration to a JSON table file (created if missing; an existing entry for the same family/group/steps is
 * replaced). Written to a temporary file and renamed, so a crash never leaves a half-written table. Returns the table.
 */
export function writeCalibrationFile(path: string, result: CalibrationResult): MagRatiosTable {
  const table = calibrationTable(result, existsSync(path) ? readCalibrationFile(path) : {});
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(table, null, 1) + '\n');
  renameSync(tmp, path);
  return table;
}

/** Studio's magcache_configuration.txt line (family, width, height, steps, then a python-ish entry), for comparison. */
export function studioCalibrationLine(result: CalibrationResult): string {
  const py = (v: number) => (Number.isInteger(v) ? v.toFixed(1) : String(v));
  return `${result.modelFamily}\t${result.width}\t${result.height}\t${result.steps}\t${result.steps}: np.array([1.0] + [${result.ratios.slice(1).map(py).join(', ')}]),`;
}
