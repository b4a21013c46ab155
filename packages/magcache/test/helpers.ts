import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import type { StepSkipHook } from '@framepack/magcache';

export interface DriveOptions {
  /** Image-stream hidden state before the blocks at step t. */
  hiddenAt?: (t: number, shape: readonly number[]) => Tensor;
  /** Block 0's modulated input at step t. */
  modulatedAt?: (t: number) => Tensor;
  /** What the block stack adds at step t when it runs. */
  residualAt?: (t: number) => Tensor;
  /** Stop after this step (a cancelled run). */
  stopAfter?: number;
}

const SHAPE = [1, 3, 4];

/** Drive a hook the way the DiT forward does for one sampling run; returns the skipped steps and the stack outputs. */
export function drive(hook: StepSkipHook, steps: number, opts: DriveOptions = {}): { skipped: number[]; outputs: number[][] } {
  const hiddenAt = opts.hiddenAt ?? ((t: number, shape: readonly number[]) => T.full(shape, 0.1 * t));
  const modulatedAt = opts.modulatedAt ?? ((t: number) => T.full(SHAPE, 1 + t));
  const residualAt = opts.residualAt ?? ((t: number) => T.full(SHAPE, 10 + t));
  const skipped: number[] = [];
  const outputs: number[][] = [];
  for (let t = 0; t <= (opts.stopAfter ?? steps - 1); t++) {
    T.tidy(() => {
      const residual = residualAt(t);
      const hidden = hiddenAt(t, residual.shape);
      const skip = hook.shouldSkip({ step: t, totalSteps: steps, modulatedInput: modulatedAt(t), hidden });
      let out: Tensor;
      if (skip) {
        skipped.push(t);
        out = hook.applySkip(hidden);
      } else {
        out = T.add(hidden, residual);
        hook.record(hidden, out);
      }
      outputs.push(Array.from(out.toFloat32Array()));
    });
  }
  return { skipped, outputs };
}
