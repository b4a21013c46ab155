import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { FRAMEPACK_TEACACHE_COEFFICIENTS, StepSkipOptionsError, TeaCache, createBranchHooks, polyval, relativeL1 } from '@framepack/magcache';
import { drive } from './helpers.js';

const constant = () => T.full([1, 3, 4], 2); // modulated input that never changes: rel L1 = 0
const F0 = 0.0961237896; // the polynomial at 0 (its constant term)

describe('TeaCache (FramePack)', () => {
  it('polyval evaluates highest degree first', () => {
    expect(polyval(FRAMEPACK_TEACACHE_COEFFICIENTS, 0)).toBe(F0);
    expect(polyval(FRAMEPACK_TEACACHE_COEFFICIENTS, 1)).toBeCloseTo(733.226126 - 401.131952 + 67.5869174 - 3.149878 + 0.0961237896, 9);
    expect(polyval([2, -3, 1], 2)).toBe(3); // 2x^2 - 3x + 1
  });
  it('relativeL1 = mean|a - b| / mean|b|', () => {
    const a = T.tensor([1, 2, -3], [3]);
    const b = T.tensor([2, 2, -1], [3]);
    expect(relativeL1(a, b)).toBe(Math.fround(1 / Math.fround(5 / 3)));
    // in bf16 the means and the quotient are bf16-rounded, as in the reference: 1 / 1.6640625 -> 0.6015625
    expect(relativeL1(T.cast(a, 'bf16'), T.cast(b, 'bf16'))).toBe(0.6015625);
  });

  it('accumulates the rescaled distance and computes when it reaches the threshold', () => {
    // rel L1 = 0 every step, so each skip adds F0 = 0.096: threshold 0.15 -> skip, compute, skip, ...; last step forced.
    expect(drive(new TeaCache(), 10, { modulatedAt: constant }).skipped).toEqual([1, 3, 5, 7]);
    // threshold 0.3: three skips (0.288) before the sum reaches 0.384 on the fourth
    expect(drive(new TeaCache({ relL1Threshold: 0.3 }), 10, { modulatedAt: constant }).skipped).toEqual([1, 2, 3, 5, 6, 7]);
    // a huge threshold skips everything but the first and the last step
    expect(drive(new TeaCache({ relL1Threshold: 1e9 }), 10, { modulatedAt: constant }).skipped).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(drive(new TeaCache({ relL1Threshold: 0 }), 10, { modulatedAt: constant }).skipped).toEqual([]);
  });

  it('computes on a large change of the modulated input', () => {
    // m doubles at step 4: rel L1 = 1 -> polynomial ~396.6 >= threshold
    const hook = new TeaCache({ relL1Threshold: 0.3 });
    const mod = (t: number) => T.full([1, 3, 4], t < 4 ? 2 : 4);
    expect(drive(hook, 10, { modulatedAt: mod }).skipped).toEqual([1, 2, 3, 5, 6, 7]);
    expect(hook.trace[4].relL1).toBe(1);
    expect(hook.trace[4].skipped).toBe(false);
    expect(hook.trace[0].relL1).toBeUndefined();
  });

  it('uses custom coefficients', () => {
    // f(d) = d: accumulate the raw relative change. m_t = 1 + t/10 -> rel L1 = 0.1/(1 + (t-1)/10)
    const hook = new TeaCache({ relL1Threshold: 0.15, coefficients: [1, 0] });
    const { skipped } = drive(hook, 8, { modulatedAt: (t) => T.full([2, 2], 1 + t / 10) });
    // rel L1 at step t is 1/(9 + t): 0.1 (skip), +0.0909 = 0.19 (compute), 0.0833 (skip), +0.0769 = 0.160 (compute),
    // 0.0714 (skip), +0.0667 = 0.138 (skip), step 7 forced
    expect(skipped).toEqual([1, 3, 5, 6]);
  });

  it('always computes the first and the last step, reuses the residual in between', () => {
    const hook = new TeaCache({ relL1Threshold: 1e9 });
    const { outputs } = drive(hook, 5, { modulatedAt: constant });
    const f = Math.fround;
    // residual of step 0 (10) reused on steps 1..3; step 4 computes (residual 14)
    expect(outputs.map((o) => o[0])).toEqual([10, f(f(0.1) + 10), f(f(0.2) + 10), f(f(0.3) + 10), f(f(0.4) + 14)]);
    expect(hook.stats.sections[0]).toEqual({ computedSteps: [0, 4], skippedSteps: [1, 2, 3] });
  });

  it('starts over at step 0; branches keep separate state', () => {
    const b = createBranchHooks(() => new TeaCache());
    for (let t = 0; t < 6; t++) {
      for (const br of ['positive', 'negative'] as const) {
        T.tidy(() => {
          const hook = b.forBranch(br);
          const hidden = T.zeros([1, 3, 4]);
          // the negative branch sees a changing input: computes every step
          const m = br === 'positive' ? constant() : T.full([1, 3, 4], 2 ** t);
          if (hook.shouldSkip({ step: t, totalSteps: 6, modulatedInput: m, hidden })) hook.applySkip(hidden);
          else hook.record(hidden, T.ones([1, 3, 4]));
        });
      }
    }
    expect(b.positive.stats.sections[0].skippedSteps).toEqual([1, 3]);
    expect(b.negative.stats.sections[0].skippedSteps).toEqual([]);
    expect(drive(b.positive, 6, { modulatedAt: constant }).skipped).toEqual([1, 3]);
    expect(b.positive.stats.sections.length).toBe(2);
    b.dispose();
  });

  it('validates options', () => {
    expect(() => new TeaCache({ relL1Threshold: -0.1 })).toThrow(StepSkipOptionsError);
    expect(() => new TeaCache({ relL1Threshold: NaN })).toThrow(StepSkipOptionsError);
    expect(() => new TeaCache({ coefficients: [] })).toThrow(StepSkipOptionsError);
    expect(() => new TeaCache({ coefficients: [1, Infinity] })).toThrow(StepSkipOptionsError);
  });
});
