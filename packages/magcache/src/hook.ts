/**
 * The step-skip hook contract, owned by @framepack/dit-model (src/step-skip.ts). Re-exported here so the policies
 * and their users name one type.
 */
import type { Tensor } from '@framepack/tensor-core';

export interface StepSkipContext {
  step: number;
  totalSteps: number;
  modulatedInput: Tensor;
  hidden: Tensor;
}
export interface StepSkipHook {
  shouldSkip(ctx: StepSkipContext): boolean;
  applySkip(hidden: Tensor): Tensor;
  record(before: Tensor, after: Tensor): void;
}
