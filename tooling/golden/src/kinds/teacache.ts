/**
 * FramePack TeaCache inside the DiT during sample_hunyuan: per run (threshold, seed, steps), the output latent and
 * the exact steps that ran the block stack.
 */
import * as T from '@framepack/tensor-core';
import { TeaCache, createBranchHooks } from '@framepack/magcache';
import { compareOutputs, withExactCheck } from '../compare.js';
import type { CaseResult, GoldenKind } from '../types.js';
import { sameList, sampleWithHooks } from './step-skip-sampling.js';

export const kind: GoldenKind = {
  name: 'teacache',
  async run(c) {
    const runs: Record<string, any>[] = c.json.runs;
    if (!Array.isArray(runs) || runs.length === 0) throw new Error('case has no runs');
    const pairs: Parameters<typeof compareOutputs>[0] = {};
    const mismatches: string[] = [];
    const notes: string[] = [];
    const owned: T.Tensor[] = [];
    try {
      for (const [i, run] of runs.entries()) {
        const hooks = createBranchHooks(() => new TeaCache({ relL1Threshold: run.rel_l1_thresh, coefficients: c.json.coefficients }));
        const { out, ref } = await sampleWithHooks(c, run, (b) => hooks.forBranch(b));
        owned.push(out, ref);
        pairs[run.out] = { ours: out, ref };
        const computed = hooks.positive.stats.sections.flatMap((s) => s.computedSteps);
        notes.push(`run${i} computed [${computed}]`);
        if (!sameList(computed, run.computed_steps)) mismatches.push(`run${i} computed steps [${computed}] vs [${run.computed_steps}]`);
        if (run.n_full_forwards !== undefined && computed.length !== run.n_full_forwards) mismatches.push(`run${i} full forwards ${computed.length} vs ${run.n_full_forwards}`);
        hooks.dispose();
      }
      let r: CaseResult = compareOutputs(pairs, c.tolerance);
      r = withExactCheck(r, mismatches.length === 0, mismatches.join('; ') || 'computed steps');
      return { ...r, note: [r.note, ...notes].filter(Boolean).join('; ') };
    } finally {
      T.disposeAll(owned);
    }
  },
};
