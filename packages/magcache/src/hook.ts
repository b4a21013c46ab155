/**
 * The step-skip hook contract is owned by @framepack/dit-model (src/step-skip.ts); re-exported so users of the
 * policies can name it without importing the model.
 */
export type { StepSkipContext, StepSkipHook } from '@framepack/dit-model';
