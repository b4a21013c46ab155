import { describe, expect, it } from 'vitest';
import {
  CalibrationTableError,
  STUDIO_MAG_RATIOS,
  StepSkipOptionsError,
  modelFamilyFor,
  nearestStepInterpolation,
  roundDecimalsHalfEven,
  roundHalfEven,
  selectMagRatios,
  validateMagRatiosTable,
  withMagRatios,
} from '@framepack/magcache';

const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('rounding like numpy / Python', () => {
  it('roundHalfEven sends exact ties to the even neighbour', () => {
    expect([0.5, 1.5, 2.5, 3.5, -4.5, -1.5, -2.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, -4, -2, -2]);
    expect([0.49999999999999994, 2.5000000000000004, 7.2, -7.7].map(roundHalfEven)).toEqual([0, 3, 7, -8]);
  });
  it('roundDecimalsHalfEven matches round(x, n) (values from CPython)', () => {
    // Exact binary ties (typical bf16 ratios) go to the even digit; toFixed would round them up.
    expect(roundDecimalsHalfEven(1.0078125, 5)).toBe(1.00781);
    expect(roundDecimalsHalfEven(1.0234375, 5)).toBe(1.02344);
    expect(roundDecimalsHalfEven(0.015625, 5)).toBe(0.01562);
    expect(roundDecimalsHalfEven(-0.015625, 5)).toBe(-0.01562);
    expect(roundDecimalsHalfEven(0.125, 2)).toBe(0.12);
    expect(roundDecimalsHalfEven(0.375, 2)).toBe(0.38);
    // Not ties: the exact binary value decides (2.675 is stored just below).
    expect(roundDecimalsHalfEven(2.675, 2)).toBe(2.67);
    expect(roundDecimalsHalfEven(1.00390625, 5)).toBe(1.00391);
    expect(roundDecimalsHalfEven(0.123456789, 5)).toBe(0.12346);
    expect(roundDecimalsHalfEven(1, 5)).toBe(1);
    expect(roundDecimalsHalfEven(6.88e-8, 5)).toBe(0);
    expect(roundDecimalsHalfEven(0.000005, 5)).toBe(0.00001); // stored just above the tie
    expect(roundDecimalsHalfEven(-1e-9, 3)).toBe(-0);
  });
});

describe('nearest-step interpolation', () => {
  it('resamples by nearest index with half-even rounding (index sequences from numpy)', () => {
    expect(nearestStepInterpolation(iota(25), 49).slice(0, 12)).toEqual([0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6]);
    expect(nearestStepInterpolation(iota(25), 10)).toEqual([0, 3, 5, 8, 11, 13, 16, 19, 21, 24]);
    expect(nearestStepInterpolation(iota(50), 25)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 27, 29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49]);
    expect(nearestStepInterpolation(iota(25), 12)).toEqual([0, 2, 4, 7, 9, 11, 13, 15, 17, 20, 22, 24]);
  });
  it('keeps the curve for the same length and takes the last value for one step', () => {
    expect(nearestStepInterpolation([1, 2, 3], 3)).toEqual([1, 2, 3]);
    expect(nearestStepInterpolation([1, 2, 3], 1)).toEqual([3]);
    expect(() => nearestStepInterpolation([1, 2], 0)).toThrow(StepSkipOptionsError);
  });
});

describe('calibration table lookup', () => {
  it('ships Studio tables for both families, 6 resolution groups and 25/50/75 steps', () => {
    expect(Object.keys(STUDIO_MAG_RATIOS).sort()).toEqual(['F1', 'Original']);
    for (const fam of ['Original', 'F1']) {
      expect(Object.keys(STUDIO_MAG_RATIOS[fam]).map(Number).sort((a, b) => a - b)).toEqual([128, 256, 384, 512, 640, 768]);
      for (const groups of Object.values(STUDIO_MAG_RATIOS[fam])) {
        for (const [steps, r] of Object.entries(groups)) {
          expect(r.length).toBe(Number(steps));
          expect(r[0]).toBe(1);
        }
      }
    }
    expect(() => validateMagRatiosTable(STUDIO_MAG_RATIOS)).not.toThrow();
  });
  it('picks the nearest resolution group, ties to the larger one', () => {
    const pick = (w: number, h: number) => selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Original', width: w, height: h, steps: 25 }).resolutionGroup;
    expect(pick(640, 640)).toBe(640);
    expect(pick(320, 320)).toBe(384); // 64 from both 384 and 256
    expect(pick(704, 704)).toBe(768); // 64 from both 768 and 640
    expect(pick(480, 480)).toBe(512);
    expect(pick(1000, 900)).toBe(768);
    expect(pick(64, 64)).toBe(128);
    expect(pick(448, 576)).toBe(512);
  });
  it('uses the exact step table when present, else resamples the nearest', () => {
    const exact = selectMagRatios(STUDIO_MAG_RATIOS, { family: 'F1', width: 640, height: 640, steps: 50 });
    expect(exact.resampled).toBe(false);
    expect(exact.ratios).toEqual([...STUDIO_MAG_RATIOS.F1[640][50]]);
    const r12 = selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Original', width: 320, height: 320, steps: 12 });
    expect(r12).toMatchObject({ resolutionGroup: 384, calibratedSteps: 25, resampled: true });
    const base = STUDIO_MAG_RATIOS.Original[384][25];
    expect(r12.ratios).toEqual([0, 2, 4, 7, 9, 11, 13, 15, 17, 20, 22, 24].map((i) => base[i]));
    expect(selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Original', width: 640, height: 640, steps: 40 }).calibratedSteps).toBe(50);
    expect(selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Original', width: 640, height: 640, steps: 62 }).calibratedSteps).toBe(50);
    expect(selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Original', width: 640, height: 640, steps: 63 }).calibratedSteps).toBe(75);
  });
  it('breaks step-count ties towards the smaller count, and rejects unknown families and bad tables', () => {
    const t = { X: { 512: { 20: iota(20), 30: iota(30) } } };
    expect(selectMagRatios(t, { family: 'X', width: 512, height: 512, steps: 25 }).calibratedSteps).toBe(20);
    expect(() => selectMagRatios(STUDIO_MAG_RATIOS, { family: 'Wan', width: 512, height: 512, steps: 25 })).toThrow(CalibrationTableError);
    expect(() => validateMagRatiosTable({ X: { 512: { 20: [1, 2] } } })).toThrow(/must hold 20 finite numbers/);
    expect(() => validateMagRatiosTable({ X: { big: { 2: [1, 1] } } })).toThrow(CalibrationTableError);
    expect(() => validateMagRatiosTable([1])).toThrow(CalibrationTableError);
  });
  it('modelFamilyFor follows Studio (F1 in the name)', () => {
    expect(modelFamilyFor('Original')).toBe('Original');
    expect(modelFamilyFor('Original with Endframe')).toBe('Original');
    expect(modelFamilyFor('Video F1')).toBe('F1');
    expect(modelFamilyFor('F1')).toBe('F1');
  });
  it('withMagRatios adds an entry without touching the base table', () => {
    const base = { Original: { 640: { 2: [1, 0.9] } } };
    const t = withMagRatios(base, 'Original', 640, [1, 1.1, 0.8]);
    expect(t.Original[640]).toEqual({ 2: [1, 0.9], 3: [1, 1.1, 0.8] });
    expect(base.Original[640]).toEqual({ 2: [1, 0.9] });
    expect(withMagRatios(base, 'F1', 320, [1]).F1[320][1]).toEqual([1]);
  });
});
