/**
 * One hook per CFG branch. With cfg != 1 the sampler calls the DiT twice per step (positive, then negative); the
 * Python references count calls, so their step index runs twice as fast and the branches overwrite each other's
 * residual. Here each branch gets its own hook, indexed by the sampler step.
 */
import type { StepSkipHook } from './hook.js';
import { mergeStats, type StepSkipStats } from './stats.js';

export type CfgBranch = 'positive' | 'negative';

export interface BranchHooks<H extends StepSkipHook> {
  positive: H;
  negative: H;
  /** The hook for a model call's branch (ModelCallContext.branch). */
  forBranch(branch: CfgBranch): H;
  /** Both branches' stats added up (sections of the positive branch first). */
  stats(): StepSkipStats;
  dispose(): void;
}

export function createBranchHooks<H extends StepSkipHook & { stats: StepSkipStats; dispose(): void }>(make: (branch: CfgBranch) => H): BranchHooks<H> {
  const positive = make('positive');
  const negative = make('negative');
  return {
    positive,
    negative,
    forBranch: (b) => (b === 'negative' ? negative : positive),
    stats: () => mergeStats([positive.stats, negative.stats]),
    dispose() {
      positive.dispose();
      negative.dispose();
    },
  };
}
