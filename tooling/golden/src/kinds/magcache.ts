/**
 * FramePack-Studio MagCache inside the DiT during sample_hunyuan: per run (family, size, steps, threshold, K,
 * retention), the calibrated ratios chosen (incl. nearest-step resampling), the skipped steps, the hit counts and
 * the output latent.
 */
import * as T from '@framepack/tensor-core';
import { MagCache, createBranchHooks } from '@framepack/magcache';
import { compareOutputs, withExactCheck } from '../compare.js';
import type { CaseResult, GoldenKind } from '../types.js';
import { sameList, sampleWithHooks } from './step-skip-sampling.js';

export const kind: GoldenKind = {
  name: 'magcache',
  async run(c) {
    const runs: Record<string, any>[] = c.json.runs;
    if (!Array.isArray(runs) || runs.length === 0) throw new Error('case has no runs');
    const pairs: Parameters<typeof compareOutputs>[0] = {};
    const mismatches: string[] = [];
    const notes: string[] = [];
    const owned: T.Tensor[] = [];
    try {
      for (const [i, run] of runs.entries()) {
        const make = () =>
          new MagCache({
            modelFamily: run.model_family,
            width: run.width,
            height: run.height,
            threshold: run.threshold,
            maxConsecutiveSkips: run.max_consecutive_skips,
            retentionRatio: run.retention_ratio,
          });
        const hooks = createBranchHooks(make);
        const ratios = hooks.positive.ratiosFor(run.steps);
        if (run.mag_ratios && !sameList(ratios, run.mag_ratios)) mismatches.push(`run${i} ratios [${ratios}] vs [${run.mag_ratios}]`);
        const { out, ref } = await sampleWithHooks(c, run, (b) => hooks.forBranch(b));
        owned.push(out, ref);
        pairs[run.out] = { ours: out, ref };
        const s = hooks.positive.stats;
        const skipped = s.sections.flatMap((x) => x.skippedSteps);
        notes.push(`run${i} skipped [${skipped}] ${s.hits}/${s.requests}`);
        if (!sameList(skipped, run.skipped_steps)) mismatches.push(`run${i} skipped steps [${skipped}] vs [${run.skipped_steps}]`);
        if (run.cache_hits !== undefined && s.hits !== run.cache_hits) mismatches.push(`run${i} cache hits ${s.hits} vs ${run.cache_hits}`);
        if (run.cache_requests !== undefined && s.requests !== run.cache_requests) mismatches.push(`run${i} cache requests ${s.requests} vs ${run.cache_requests}`);
        hooks.dispose();
      }
      let r: CaseResult = compareOutputs(pairs, c.tolerance);
      r = withExactCheck(r, mismatches.length === 0, mismatches.join('; ') || 'skip decisions');
      return { ...r, note: [r.note, ...notes].filter(Boolean).join('; ') };
    } finally {
      T.disposeAll(owned);
    }
  },
};
