import type { Tensor } from '@framepack/tensor-core';

/**
 * Step skipping (TeaCache, MagCache): a hook the forward consults once per call, before any block runs.
 *
 * Lifetimes: the tensors handed to the hook are owned by the forward and are disposed when it returns.
 * A hook that keeps something across calls (previous input, cached residual) must make its own tensor
 * (e.g. `T.sub(after, before)`, `T.clone(x)`) and protect it with `T.keep()` (the caller may run the
 * forward inside a `T.tidy`), then dispose what it replaces. `applySkip` returns a new tensor the forward owns.
 */
export interface StepSkipContext {
  step: number;
  totalSteps: number;
  /** Block 0's norm1 output modulated by its shift/scale (TeaCache's input), (B, N, D) over the packed image tokens. */
  modulatedInput: Tensor;
  /** The image-stream hidden state right before the first block, (B, N, D). */
  hidden: Tensor;
}

export interface StepSkipHook {
  /** Called once per forward, before any block runs. */
  shouldSkip(ctx: StepSkipContext): boolean;
  /** Skipped: returns hidden + cached residual. */
  applySkip(hidden: Tensor): Tensor;
  /** Computed: image-stream hidden before/after the whole block stack. */
  record(before: Tensor, after: Tensor): void;
}
