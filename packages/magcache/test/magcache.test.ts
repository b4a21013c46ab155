import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import {
  CalibrationTableError,
  MAGCACHE4FRAMEPACK_RATIOS,
  MagCache,
  StepSkipOptionsError,
  StepSkipStateError,
  createBranchHooks,
  formatSkipStats,
} from '@framepack/magcache';
import { drive } from './helpers.js';

describe('MagCache (FramePack-Studio state machine)', () => {
  // Skip lists simulated by the research helper with Studio's algorithm and shipped tables (studio-spec.md §1.8).
  const vectors: { family: string; size: number; steps: number; thr: number; k: number; ret: number; skipped: number[] }[] = [
    { family: 'Original', size: 640, steps: 25, thr: 0.1, k: 2, ret: 0.25, skipped: [6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22] },
    { family: 'Original', size: 640, steps: 25, thr: 0.15, k: 2, ret: 0.25, skipped: [6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22] },
    { family: 'Original', size: 640, steps: 25, thr: 0.1, k: 3, ret: 0.2, skipped: [5, 7, 9, 10, 12, 13, 15, 16, 18, 19, 20, 22] },
    { family: 'Original', size: 640, steps: 25, thr: 0.15, k: 4, ret: 0.2, skipped: [5, 6, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22] },
    { family: 'F1', size: 640, steps: 25, thr: 0.1, k: 2, ret: 0.25, skipped: [6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 23] },
    { family: 'Original', size: 320, steps: 10, thr: 0.15, k: 2, ret: 0.25, skipped: [3, 4, 6, 7] },
    { family: 'Original', size: 320, steps: 25, thr: 0.15, k: 2, ret: 0.25, skipped: [6, 7, 9, 10, 12, 13, 16, 17, 19, 20] },
    { family: 'Original', size: 512, steps: 30, thr: 0.1, k: 2, ret: 0.25, skipped: [7, 8, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27] },
    { family: 'Original', size: 320, steps: 10, thr: 0.15, k: 10, ret: 0.9, skipped: [] },
    { family: 'Original', size: 320, steps: 30, thr: 0.15, k: 10, ret: 0.9, skipped: [] },
  ];
  for (const v of vectors) {
    it(`${v.family} ${v.size}x${v.size} ${v.steps} steps, E${v.thr} K${v.k} R${v.ret}`, () => {
      const hook = new MagCache({ modelFamily: v.family, width: v.size, height: v.size, threshold: v.thr, maxConsecutiveSkips: v.k, retentionRatio: v.ret });
      expect(drive(hook, v.steps).skipped).toEqual(v.skipped);
      expect(hook.stats.sections[0]).toEqual({ skippedSteps: v.skipped, computedSteps: [...Array(v.steps).keys()].filter((s) => !v.skipped.includes(s)) });
      hook.dispose();
    });
  }
  it('official MagCache4FramePack curve (explicit ratios)', () => {
    const a = new MagCache({ width: 640, height: 640, ratios: MAGCACHE4FRAMEPACK_RATIOS.Original, threshold: 0.1, maxConsecutiveSkips: 3, retentionRatio: 0.2 });
    expect(drive(a, 25).skipped).toEqual([5, 6, 8, 10, 11, 13, 14, 16, 17, 19, 20, 21, 23]);
    const b = new MagCache({ width: 640, height: 640, ratios: MAGCACHE4FRAMEPACK_RATIOS.Original, threshold: 0.15, maxConsecutiveSkips: 4, retentionRatio: 0.2 });
    expect(drive(b, 25).skipped).toEqual([5, 6, 8, 9, 11, 12, 13, 15, 16, 17, 19, 20, 21, 22]);
  });

  it('skips exactly while accumulated error, K and the 0.06 gate allow (hand-checked curve)', () => {
    // ratios 1.02 each: acc ratio 1.02, 1.0404, 1.061208 -> errors .02, .0604, .121608
    const ratios = [1, 1.02, 1.02, 1.02, 1.02, 1.02, 1.02, 1.02];
    const run = (thr: number, k: number, dev = 0.06) => drive(new MagCache({ width: 64, height: 64, ratios, threshold: thr, maxConsecutiveSkips: k, retentionRatio: 0, maxRatioDeviation: dev }), 8).skipped;
    // step 0 always runs (no residual yet); thr .1: skip 1, 2 (err .0604), step 3 err .1216 > .1 -> compute, restart
    expect(run(0.1, 5)).toEqual([1, 2, 4, 5, 7]);
    expect(run(0.1, 1)).toEqual([1, 3, 5, 7]); // K = 1 alternates
    expect(run(0.01, 5)).toEqual([]); // the first skip already costs 0.02
    expect(run(1, 5, 0.01)).toEqual([]); // |1 - 1.02| > 0.01
    expect(run(1, 0)).toEqual([]); // K = 0 never skips
  });

  it('keeps the first floor(retention * steps) steps and never skips more than K in a row', () => {
    for (const [steps, ret, k, thr] of [[25, 0.25, 2, 10], [40, 0.3, 3, 10], [12, 0.5, 1, 10], [30, 0, 4, 10]] as const) {
      const ratios = Array.from({ length: steps }, () => 1);
      const { skipped } = drive(new MagCache({ width: 640, height: 640, ratios, threshold: thr, maxConsecutiveSkips: k, retentionRatio: ret }), steps);
      const retained = Math.max(1, Math.floor(ret * steps));
      expect(skipped.every((s) => s >= retained)).toBe(true);
      expect(skipped[0]).toBe(retained); // ratio 1 everywhere: the first eligible step skips
      let run = 0;
      for (let s = 0; s < steps; s++) {
        run = skipped.includes(s) ? run + 1 : 0;
        expect(run).toBeLessThanOrEqual(k);
      }
      // K skips then one compute, repeating
      const n = steps - retained;
      expect(skipped.length).toBe(Math.floor(n / (k + 1)) * k + Math.min(n % (k + 1), k));
    }
  });

  it('reuses the last computed residual on skipped steps', () => {
    const hook = new MagCache({ width: 64, height: 64, ratios: [1, 1, 1, 1, 1, 1], threshold: 1, maxConsecutiveSkips: 2, retentionRatio: 0 });
    const { skipped, outputs } = drive(hook, 6);
    expect(skipped).toEqual([1, 2, 4, 5]);
    // hidden = 0.1 t, residual when computed = 10 + t
    const f = Math.fround;
    expect(outputs.map((o) => o[0])).toEqual([f(0 + 10), f(f(0.1) + 10), f(f(0.2) + 10), f(f(0.3) + 13), f(f(0.4) + 13), f(f(0.5) + 13)]);
  });

  it('restarts at every step 0 (a new section) and counts totals over the job', () => {
    const hook = new MagCache({ modelFamily: 'Original', width: 320, height: 320, threshold: 0.15, maxConsecutiveSkips: 2, retentionRatio: 0.25 });
    expect(drive(hook, 10).skipped).toEqual([3, 4, 6, 7]);
    // a cancelled section: stops after step 5
    expect(drive(hook, 10, { stopAfter: 5 }).skipped).toEqual([3, 4]);
    expect(drive(hook, 10).skipped).toEqual([3, 4, 6, 7]);
    const s = hook.stats;
    expect(s.sections.map((x) => x.skippedSteps)).toEqual([[3, 4, 6, 7], [3, 4], [3, 4, 6, 7]]);
    expect(s.sections[1].computedSteps).toEqual([0, 1, 2, 5]);
    expect(s.requests).toBe(26);
    expect(s.hits).toBe(10);
  });

  it('with CFG, one hook per branch: each advances once per step and keeps its own residual', () => {
    const branches = createBranchHooks(() => new MagCache({ width: 640, height: 640, threshold: 0.1, maxConsecutiveSkips: 2, retentionRatio: 0.25 }));
    const outs = { positive: [] as number[], negative: [] as number[] };
    for (let t = 0; t < 25; t++) {
      for (const branch of ['positive', 'negative'] as const) {
        T.tidy(() => {
          const hook = branches.forBranch(branch);
          const hidden = T.full([1, 2, 2], t);
          const skip = hook.shouldSkip({ step: t, totalSteps: 25, modulatedInput: hidden, hidden });
          const res = T.full([1, 2, 2], branch === 'positive' ? 100 + t : -100 - t);
          const out = skip ? hook.applySkip(hidden) : T.add(hidden, res);
          if (!skip) hook.record(hidden, out);
          outs[branch].push(out.toFloat32Array()[0]);
        });
      }
    }
    const expected = [6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22];
    expect(branches.positive.stats.sections[0].skippedSteps).toEqual(expected);
    expect(branches.negative.stats.sections[0].skippedSteps).toEqual(expected);
    expect(branches.stats()).toMatchObject({ requests: 50, hits: 24 });
    expect(formatSkipStats('MagCache', branches.stats())).toBe('MagCache skipped 24/50 steps (48.0%)');
    // step 6 is skipped: each branch adds its own residual from step 5
    expect(outs.positive[6]).toBe(6 + 105);
    expect(outs.negative[6]).toBe(6 - 105);
    branches.dispose();
  });

  it('rejects driving one hook with both branches, and out-of-protocol calls', () => {
    const hook = new MagCache({ width: 640, height: 640 });
    const h = T.zeros([1, 2, 2]);
    expect(hook.shouldSkip({ step: 0, totalSteps: 25, modulatedInput: h, hidden: h })).toBe(false);
    expect(() => hook.applySkip(h)).toThrow(StepSkipStateError);
    hook.record(h, h);
    expect(() => hook.record(h, h)).toThrow(StepSkipStateError);
    expect(() => hook.shouldSkip({ step: 0 + 1, totalSteps: 25, modulatedInput: h, hidden: h })).not.toThrow();
    expect(() => hook.shouldSkip({ step: 1, totalSteps: 25, modulatedInput: h, hidden: h })).toThrow(/one hook per branch/);
    expect(() => hook.shouldSkip({ step: 25, totalSteps: 25, modulatedInput: h, hidden: h })).toThrow(StepSkipStateError);
    h.dispose();
    hook.dispose();
  });

  it('never skips without a residual of the right shape (hook first used mid-run)', () => {
    const hook = new MagCache({ width: 64, height: 64, ratios: [1, 1, 1, 1, 1, 1], threshold: 1, maxConsecutiveSkips: 5, retentionRatio: 0 });
    const a = T.zeros([1, 2, 2]);
    expect(hook.shouldSkip({ step: 3, totalSteps: 6, modulatedInput: a, hidden: a })).toBe(false);
    hook.record(a, T.ones([1, 2, 2]));
    expect(hook.shouldSkip({ step: 4, totalSteps: 6, modulatedInput: a, hidden: a })).toBe(true);
    expect(Array.from(hook.applySkip(a).toFloat32Array())).toEqual([1, 1, 1, 1]);
    const b = T.zeros([1, 3, 2]);
    expect(hook.shouldSkip({ step: 5, totalSteps: 6, modulatedInput: b, hidden: b })).toBe(false);
    hook.dispose();
  });

  it('validates options and families at construction', () => {
    expect(() => new MagCache({ modelFamily: 'Wan2.1', width: 640, height: 640 })).toThrow(CalibrationTableError);
    expect(() => new MagCache({ width: 0, height: 640 })).toThrow(StepSkipOptionsError);
    expect(() => new MagCache({ width: 640, height: 640, retentionRatio: 1.5 })).toThrow(StepSkipOptionsError);
    expect(() => new MagCache({ width: 640, height: 640, maxConsecutiveSkips: 1.5 })).toThrow(StepSkipOptionsError);
    expect(() => new MagCache({ width: 640, height: 640, threshold: -1 })).toThrow(StepSkipOptionsError);
    expect(() => new MagCache({ width: 640, height: 640, ratios: [] })).toThrow(StepSkipOptionsError);
    const m = new MagCache({ width: 640, height: 640, ratios: MAGCACHE4FRAMEPACK_RATIOS.F1 });
    expect(m.ratiosFor(10)).toEqual([0, 3, 5, 8, 11, 13, 16, 19, 21, 24].map((i) => MAGCACHE4FRAMEPACK_RATIOS.F1[i]));
    expect(m.retainedSteps(25)).toBe(6);
  });
});
