/**
 * Real CFG (cfg != 1) through sampleHunyuan and the tiny packed DiT: with one hook per branch, each branch's hook
 * sees every sampler step exactly once, in order, and MagCache follows the same schedule as a cfg = 1 run.
 * (The golden cases only cover cfg = 1, where the references' per-call counting and our per-step index agree.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
import { sampleHunyuan, type ModelCallContext } from '@framepack/k-diffusion';
import { MagCache, TeaCache, createBranchHooks, type StepSkipHook } from '@framepack/magcache';
import { defaultGoldenDir } from '../../../tooling/golden/src/index.js';

const caseDir = join(defaultGoldenDir(), 'sample-hunyuan');
const PROMPT: Record<string, keyof PackedDiTInputs> = { llama_vec: 'encoderHiddenStates', llama_attention_mask: 'encoderAttentionMask', clip_l_pooler: 'pooledProjections' };
const SHARED: Record<string, keyof PackedDiTInputs> = {
  image_embeddings: 'imageEmbeddings', latent_indices: 'latentIndices', clean_latents: 'cleanLatents', clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x', clean_latent_2x_indices: 'cleanLatentIndices2x', clean_latents_4x: 'cleanLatents4x', clean_latent_4x_indices: 'cleanLatentIndices4x',
};

describe.skipIf(!existsSync(caseDir))('step skipping with real CFG (one hook per branch)', () => {
  it('MagCache and TeaCache: every branch hook advances once per step', async () => {
    const json = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
    const w = openSafetensors(join(caseDir, '..', json.weights_from, 'weights.safetensors'));
    const model = HunyuanVideoTransformer3DModelPacked.fromWeights(json.config, w);
    w.close();
    const t = openSafetensors(join(caseDir, 'tensors.safetensors'));
    const pos: Record<string, Tensor> = {}, neg: Record<string, Tensor> = {};
    for (const k of t.keys().filter((k) => k.startsWith('in.'))) {
      const name = k.slice(3);
      if (SHARED[name]) pos[SHARED[name]] = neg[SHARED[name]] = t.tensor(k);
      else if (name.endsWith('_n')) neg[PROMPT[name.slice(0, -2)]] = t.tensor(k);
      else pos[PROMPT[name]] = t.tensor(k);
    }
    t.close();
    const steps = 12;
    const run = async (hookFor: (b: 'positive' | 'negative') => StepSkipHook) => {
      const calls: Pick<ModelCallContext, 'step' | 'branch'>[] = [];
      const out = await sampleHunyuan<Record<string, Tensor>>({
        model: (x, timestep, cond, ctx) => {
          calls.push({ step: ctx.step, branch: ctx.branch });
          const inputs = { ...cond, hiddenStates: x, timestep, guidance: ctx.guidance } as unknown as PackedDiTInputs;
          return model.forward(inputs, { stepSkip: hookFor(ctx.branch), step: ctx.step, totalSteps: ctx.totalSteps });
        },
        positive: pos,
        negative: neg,
        width: 128, height: 128, frames: 9, steps, cfg: 3, gs: 6, rs: 0.7, seed: 4321, dtype: 'f32',
      });
      const finite = out.toFloat32Array().every(Number.isFinite);
      out.dispose();
      return { calls, finite };
    };
    const every = [...Array(steps).keys()];

    // MagCache: the schedule depends only on the table, so both branches skip what a cfg = 1 run skips
    // (Original 320x320, 12 steps resampled from 25, E0.25 K3 R0.2: the magcache-sampling case's run1).
    const mag = createBranchHooks(() => new MagCache({ width: 320, height: 320, threshold: 0.25, maxConsecutiveSkips: 3, retentionRatio: 0.2 }));
    const m = await run((b) => mag.forBranch(b));
    expect(m.finite).toBe(true);
    expect(m.calls.length).toBe(2 * steps);
    for (const hook of [mag.positive, mag.negative]) {
      expect(hook.stats.sections.length).toBe(1);
      expect(hook.stats.sections[0].skippedSteps).toEqual([2, 3, 4, 6, 8, 9]);
      expect([...hook.stats.sections[0].computedSteps, ...hook.stats.sections[0].skippedSteps].sort((a, b) => a - b)).toEqual(every);
    }
    mag.dispose();

    // TeaCache: each branch measures its own modulated input; first and last step computed in both
    const tea = createBranchHooks(() => new TeaCache({ relL1Threshold: 0.5 }));
    const r = await run((b) => tea.forBranch(b));
    expect(r.finite).toBe(true);
    for (const hook of [tea.positive, tea.negative]) {
      expect(hook.trace.map((e) => e.step)).toEqual(every);
      const { computedSteps } = hook.stats.sections[0];
      expect(computedSteps[0]).toBe(0);
      expect(computedSteps[computedSteps.length - 1]).toBe(steps - 1);
      expect(hook.trace.filter((e) => e.relL1 !== undefined).length).toBe(steps - 2);
    }
    expect(tea.stats().hits).toBeGreaterThan(0);
    tea.dispose();

    // one hook shared by both branches is refused (it would advance twice per step)
    const shared = new MagCache({ width: 320, height: 320 });
    await expect(run(() => shared)).rejects.toThrow(/one hook per branch/);
    shared.dispose();
    T.disposeAll([pos, neg]);
    model.dispose();
  });
});
