/**
 * MagCache calibration tables: model family -> resolution group -> step count -> magnitude ratios, and the lookup
 * FramePack-Studio uses to pick one (nearest resolution group, nearest step count, nearest-index resampling).
 */
import { CalibrationTableError, StepSkipOptionsError } from './errors.js';
import { roundHalfEven } from './rounding.js';

/** `table[family][resolutionGroup][steps]` = ratios (length `steps`, index 0 is 1). Keys are numbers or numeric strings (JSON). */
export type MagRatiosTable = Record<string, Record<number | string, Record<number | string, readonly number[]>>>;

export interface MagRatiosSelection {
  ratios: number[];
  family: string;
  /** The resolution group whose table was used. */
  resolutionGroup: number;
  /** The calibrated step count the ratios come from (equal to the requested steps unless resampled). */
  calibratedSteps: number;
  resampled: boolean;
}

/** The model family of a FramePack model type: "F1" if the name contains F1 (Studio's rule), else "Original". */
export function modelFamilyFor(modelType: string): 'F1' | 'Original' {
  return modelType.includes('F1') ? 'F1' : 'Original';
}

/**
 * Resample a ratio curve to `targetLength` entries by nearest index: `out[i] = src[round(i * (L-1)/(n-1))]`, rounding
 * half to even like numpy (25 -> 49 steps hits exact .5 positions). A single step takes the last value, as Studio does.
 */
export function nearestStepInterpolation(src: readonly number[], targetLength: number): number[] {
  if (!Number.isInteger(targetLength) || targetLength < 1) throw new StepSkipOptionsError(`target length must be a positive integer, got ${targetLength}`);
  if (src.length === 0) throw new CalibrationTableError('cannot resample an empty ratio curve');
  if (targetLength === 1) return [src[src.length - 1]];
  const scale = (src.length - 1) / (targetLength - 1);
  const out: number[] = [];
  for (let i = 0; i < targetLength; i++) out.push(src[roundHalfEven(i * scale)]);
  return out;
}

function numericKeys(obj: object, what: string): number[] {
  const keys = Object.keys(obj).map(Number);
  if (keys.length === 0 || keys.some((k) => !Number.isFinite(k) || k <= 0)) {
    throw new CalibrationTableError(`${what} must have positive numeric keys, got [${Object.keys(obj).join(', ')}]`);
  }
  return keys;
}

/**
 * Nearest key to `target`. Studio takes the first minimum in the table's declared order, which for its tables means
 * ties go to the larger resolution (768, 640, ... declared descending) and to the smaller step count (25, 50, 75
 * declared ascending). JS objects do not keep the order of numeric keys, so the tie rule is explicit here.
 */
function nearest(keys: number[], target: number, ties: 'larger' | 'smaller'): number {
  let best = keys[0];
  for (const k of keys) {
    const d = Math.abs(k - target), bd = Math.abs(best - target);
    if (d < bd || (d === bd && (ties === 'larger' ? k > best : k < best))) best = k;
  }
  return best;
}

/** Pick the ratios for (family, width x height, steps) from a table, resampling the nearest step count if needed. */
export function selectMagRatios(table: MagRatiosTable, opts: { family: string; width: number; height: number; steps: number }): MagRatiosSelection {
  const { family, width, height, steps } = opts;
  if (!(width > 0 && height > 0)) throw new StepSkipOptionsError(`width and height must be positive, got ${width}x${height}`);
  if (!Number.isInteger(steps) || steps < 1) throw new StepSkipOptionsError(`steps must be a positive integer, got ${steps}`);
  const groups = table[family];
  if (!groups) {
    throw new CalibrationTableError(`MagCache has no calibration for model family '${family}' (known: ${Object.keys(table).join(', ') || 'none'}); calibrate it or use TeaCache`);
  }
  const resolutionGroup = nearest(numericKeys(groups, `table['${family}']`), (height + width) / 2, 'larger');
  const bySteps = groups[resolutionGroup];
  const calibratedSteps = nearest(numericKeys(bySteps, `table['${family}'][${resolutionGroup}]`), steps, 'smaller');
  const base = bySteps[calibratedSteps];
  if (!Array.isArray(base) || base.length !== calibratedSteps || base.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new CalibrationTableError(`table['${family}'][${resolutionGroup}][${calibratedSteps}] must hold ${calibratedSteps} finite numbers`);
  }
  const resampled = calibratedSteps !== steps;
  return { ratios: resampled ? nearestStepInterpolation(base, steps) : [...base], family, resolutionGroup, calibratedSteps, resampled };
}

/** Check a table's shape (e.g. one read from a calibration JSON file); returns it typed. */
export function validateMagRatiosTable(value: unknown): MagRatiosTable {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CalibrationTableError('a MagCache table must be an object keyed by model family');
  for (const [family, groups] of Object.entries(value)) {
    if (groups === null || typeof groups !== 'object') throw new CalibrationTableError(`table['${family}'] must be an object keyed by resolution group`);
    for (const res of numericKeys(groups, `table['${family}']`)) {
      const bySteps = (groups as Record<string, unknown>)[String(res)];
      if (bySteps === null || typeof bySteps !== 'object') throw new CalibrationTableError(`table['${family}'][${res}] must be an object keyed by step count`);
      for (const steps of numericKeys(bySteps, `table['${family}'][${res}]`)) {
        const r = (bySteps as Record<string, unknown>)[String(steps)];
        if (!Array.isArray(r) || r.length !== steps || r.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          throw new CalibrationTableError(`table['${family}'][${res}][${steps}] must hold ${steps} finite numbers`);
        }
      }
    }
  }
  return value as MagRatiosTable;
}

/** A copy of `base` with `ratios` set at [family][resolutionGroup][steps] (calibration results added to a table). */
export function withMagRatios(base: MagRatiosTable, family: string, resolutionGroup: number, ratios: readonly number[]): MagRatiosTable {
  const out: MagRatiosTable = {};
  for (const [f, groups] of Object.entries(base)) {
    out[f] = {};
    for (const [r, bySteps] of Object.entries(groups)) out[f][r] = { ...bySteps };
  }
  out[family] ??= {};
  out[family][resolutionGroup] = { ...(out[family][resolutionGroup] ?? {}), [ratios.length]: [...ratios] };
  return out;
}
