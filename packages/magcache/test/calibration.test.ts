import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import {
  CalibrationTableError,
  MagCache,
  MagCacheCalibrator,
  StepSkipOptionsError,
  StepSkipStateError,
  calibrationTable,
  readCalibrationFile,
  residualChange,
  studioCalibrationLine,
  writeCalibrationFile,
} from '@framepack/magcache';
import { drive } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'magcache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Residual at step t: token i is scale[t][i] * direction (so per-token norm ratios are scale ratios). */
function residuals(scales: number[][], dirs: number[][]) {
  return (t: number) => T.tensor(scales[t].flatMap((s, i) => dirs[i].map((d) => s * d)), [1, scales[t].length, dirs[0].length]);
}

describe('MagCache calibration', () => {
  it('residualChange: per-token norm ratio mean/std and cosine distance', () => {
    // token 0: [3,4] -> [6,8] (ratio 2, same direction); token 1: [1,0] -> [0,3] (ratio 3, orthogonal)
    const prev = T.tensor([3, 4, 1, 0], [1, 2, 2]);
    const cur = T.tensor([6, 8, 0, 3], [1, 2, 2]);
    const c = residualChange(cur, prev);
    expect(c.normRatio).toBeCloseTo(2.5, 6);
    expect(c.normStd).toBeCloseTo(Math.SQRT1_2, 6); // unbiased std of {2, 3}
    expect(c.cosDistance).toBeCloseTo(0.5, 6); // mean of 1 - 1 and 1 - 0
    expect(() => residualChange(cur, T.zeros([1, 4]))).toThrow(StepSkipStateError);
  });

  it('residualChange agrees with a float64 computation on random residuals', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const [B, L, C] = [2, 37, 8];
    const a = Float32Array.from({ length: B * L * C }, rnd);
    const b = Float32Array.from({ length: B * L * C }, rnd);
    const ratios: number[] = [], cos: number[] = [];
    for (let tok = 0; tok < B * L; tok++) {
      let na = 0, nb = 0, dot = 0;
      for (let c = 0; c < C; c++) {
        const x = a[tok * C + c], y = b[tok * C + c];
        na += x * x; nb += y * y; dot += x * y;
      }
      ratios.push(Math.sqrt(na) / Math.sqrt(nb));
      cos.push(1 - dot / (Math.sqrt(na) * Math.sqrt(nb)));
    }
    const mean = ratios.reduce((p, q) => p + q, 0) / ratios.length;
    const std = Math.sqrt(ratios.reduce((p, q) => p + (q - mean) ** 2, 0) / (ratios.length - 1));
    const c = residualChange(T.tensor(a, [B, L, C]), T.tensor(b, [B, L, C]));
    expect(c.normRatio).toBeCloseTo(mean, 5);
    expect(c.normStd).toBeCloseTo(std, 5);
    expect(c.cosDistance).toBeCloseTo(cos.reduce((p, q) => p + q, 0) / cos.length, 5);
  });

  it('records every step and rounds ratios to 5 decimals half-even', () => {
    const cal = new MagCacheCalibrator({ modelFamily: 'Original', width: 320, height: 448 });
    // uniform scales 1 -> 129/128 -> 129/128 * 1.5 -> ... ; ratios exactly 1.0078125 (tie: 1.00781), 1.5, 0.25
    const s = [1, 129 / 128, (129 / 128) * 1.5, (129 / 128) * 1.5 * 0.25];
    const dirs = [[1, 2], [-2, 1], [0, 3]];
    const { skipped } = drive(cal, 4, { hiddenAt: (_t, shape) => T.zeros(shape), residualAt: residuals(s.map((v) => [v, v, v]), dirs) });
    expect(skipped).toEqual([]);
    expect(cal.complete).toBe(true);
    const r = cal.result();
    expect(r).toMatchObject({ modelFamily: 'Original', width: 320, height: 448, resolutionGroup: 384, steps: 4 });
    expect(r.ratios).toEqual([1, 1.00781, 1.5, 0.25]);
    expect(r.normStd).toEqual([0, 0, 0]);
    expect(r.cosDistance).toEqual([0, 0, 0]);
    expect(cal.changes[0].normRatio).toBe(1.0078125);
  });

  it('the calibrated curve drives MagCache through a table file', () => {
    const cal = new MagCacheCalibrator({ width: 640, height: 640 });
    const scales = [1, 1, 1.01, 1.01, 1.0302, 0.5];
    drive(cal, 6, { hiddenAt: (_t, shape) => T.zeros(shape), residualAt: residuals(scales.map((v) => [v, 2 * v]), [[1, 0], [0, 1]]) });
    const res = cal.result();
    expect(res.ratios).toEqual([1, 1, 1.01, 1, 1.02, 0.48534]);
    const path = join(dir, 'sub', 'magcache.json');
    writeCalibrationFile(path, res);
    const other = { ...res, resolutionGroup: 320, width: 320, height: 320 };
    const table = writeCalibrationFile(path, other);
    expect(Object.keys(table.Original).sort()).toEqual(['320', '640']);
    const loaded = readCalibrationFile(path);
    expect(loaded.Original[640][6]).toEqual(res.ratios);
    const run = (threshold: number, k: number) =>
      drive(new MagCache({ width: 640, height: 640, table: loaded, threshold, maxConsecutiveSkips: k, retentionRatio: 0 }), 6).skipped;
    expect(new MagCache({ width: 640, height: 640, table: loaded }).ratiosFor(6)).toEqual(res.ratios);
    // accumulated ratio 1, 1.01, 1.01, 1.0302 -> errors 0, .01, .02, .0502; step 5 (0.485) fails the 0.06 gate
    expect(run(0.06, 4)).toEqual([1, 2, 3, 4]);
    expect(run(0.05, 4)).toEqual([1, 2, 3]);
    expect(run(0.06, 3)).toEqual([1, 2, 3]);
  });

  it('result() needs a complete run; statistics restart at step 0', () => {
    const cal = new MagCacheCalibrator({ width: 64, height: 64 });
    drive(cal, 5, { stopAfter: 2 });
    expect(cal.complete).toBe(false);
    expect(() => cal.result()).toThrow(/every step/);
    drive(cal, 3);
    expect(cal.result().ratios.length).toBe(3);
    expect(cal.stats.sections.length).toBe(2);
  });

  it('table files are validated; Studio line format', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ Original: { 640: { 3: [1, 2] } } }));
    expect(() => readCalibrationFile(bad)).toThrow(CalibrationTableError);
    writeFileSync(bad, '{ not json');
    expect(() => readCalibrationFile(bad)).toThrow(StepSkipOptionsError);
    const res = { modelFamily: 'F1', width: 640, height: 480, resolutionGroup: 560, steps: 3, ratios: [1, 1.25, 0.9], normStd: [0, 0], cosDistance: [0, 0] };
    expect(studioCalibrationLine(res)).toBe('F1\t640\t480\t3\t3: np.array([1.0] + [1.25, 0.9]),');
    expect(calibrationTable(res).F1[560][3]).toEqual([1, 1.25, 0.9]);
    expect(() => new MagCacheCalibrator({ width: -1, height: 5 })).toThrow(StepSkipOptionsError);
  });
});
