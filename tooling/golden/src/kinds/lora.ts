import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
import { LoraStack, loadLora, shapesOf } from '@framepack/lora';
import { compareOutputs, withExactCheck } from '../compare.js';
import type { GoldenCase, GoldenKind } from '../types.js';

/** in.<reference forward argument> -> PackedDiTInputs field (snake_case -> camelCase, 2x/4x index names reordered). */
function fieldOf(arg: string): keyof PackedDiTInputs {
  const m = /^clean_latent_(\dx)_indices$/.exec(arg);
  if (m) return `cleanLatentIndices${m[1]}` as keyof PackedDiTInputs;
  return arg.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase()) as keyof PackedDiTInputs;
}

function forwardInputs(c: GoldenCase): PackedDiTInputs {
  const inputs: Record<string, Tensor> = {};
  for (const key of c.tensors.keys().filter((k) => k.startsWith('in.'))) {
    // as stored (f32): the model casts activations to its dtype, and timestep/guidance stay exact as in the reference
    inputs[fieldOf(key.slice(3))] = c.tensors.tensor(key, { device: c.device });
  }
  return inputs as unknown as PackedDiTInputs;
}

function run(c: GoldenCase, weights: Record<string, Tensor>, inputs: PackedDiTInputs): Tensor {
  const model = HunyuanVideoTransformer3DModelPacked.fromWeights(c.json.config, weights, { dtype: c.dtype, device: c.device });
  try {
    return model.forward(inputs);
  } finally {
    model.dispose();
  }
}

/**
 * lora-* cases: the tiny DiT with a LoRA file merged at each run's weight (case.json `runs`), compared with the
 * reference's forward output; every run is unmerged again, and `out.base` (when present) is checked after
 * the last unmerge. Exact check: the weights the LoRA reaches are the case's `targets`, nothing unmatched.
 */
export const kind: GoldenKind = {
  name: 'lora',
  async run(c) {
    const file = openSafetensors(c.weightsPath());
    const weights: Record<string, Tensor> = {};
    try {
      for (const k of file.keys()) weights[k] = file.tensor(k, { dtype: 'f32', device: c.device });
    } finally {
      file.close();
    }
    const lora = loadLora(join(c.dir, String(c.json.lora_file ?? 'lora.safetensors')));
    const inputs = forwardInputs(c);
    const outs: Tensor[] = [];
    try {
      const pairs: Record<string, { ours: Tensor; ref: Tensor }> = {};
      let targetsOk = true;
      let unmatched = 0;
      for (const r of c.json.runs as { weight: number; out: string }[]) {
        const stack = new LoraStack(shapesOf(weights), [{ lora, weight: r.weight }]);
        const want = (c.json.targets as string[]).map((t) => `${t}.weight`).sort();
        targetsOk &&= JSON.stringify(stack.targets) === JSON.stringify(want);
        unmatched += stack.report.loras[0].unmatched.length;
        const merged = stack.mergeWeights(weights);
        try {
          const ours = run(c, weights, inputs);
          const ref = c.tensors.tensor(r.out);
          outs.push(ours, ref);
          pairs[r.out.replace(/^out\./, '')] = { ours, ref };
        } finally {
          merged.unmerge();
        }
      }
      if (c.tensors.keys().includes('out.base')) {
        const ours = run(c, weights, inputs);
        const ref = c.tensors.tensor('out.base');
        outs.push(ours, ref);
        pairs.base = { ours, ref };
      }
      const res = compareOutputs(pairs, c.tolerance);
      return withExactCheck(withExactCheck(res, targetsOk, 'LoRA target weights'), unmatched === 0, 'unmatched LoRA keys');
    } finally {
      T.disposeAll([outs, inputs, weights]);
      for (const m of lora.modules) T.disposeAll([m.down, m.up]);
    }
  },
};
