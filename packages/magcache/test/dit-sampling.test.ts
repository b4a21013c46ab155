/**
 * The hooks inside sampleHunyuan on the tiny packed DiT (the golden cases' weights and inputs):
 * - real CFG (cfg != 1): with one hook per branch, each branch's hook sees every sampler step exactly once, in order,
 *   and MagCache follows the same schedule as a cfg = 1 run (the golden cases only cover cfg = 1, where the
 *   references' per-call counting and our per-step index agree);
 * - calibration: the calibrator's curve matches the residuals the DiT handed it, recomputed in float64.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
import { sampleHunyuan, type ModelCallContext } from '@framepack/k-diffusion';
import { MagCache, MagCacheCalibrator, TeaCache, createBranchHooks, roundDecimalsHalfEven, type StepSkipHook } from '@framepack/magcache';
import { defaultGoldenDir } from '../../../tooling/golden/src/index.js';

const caseDir = join(defaultGoldenDir(), 'sample-hunyuan');
const PROMPT: Record<string, keyof PackedDiTInputs> = { llama_vec: 'encoderHiddenStates', llama_attention_mask: 'encoderAttentionMask', clip_l_pooler: 'pooledProjections' };
const SHARED: Record<string, keyof PackedDiTInputs> = {
  image_embeddings: 'imageEmbeddings', latent_indices: 'latentIndices', clean_latents: 'cleanLatents', clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x', clean_latent_2x_indices: 'cleanLatentIndices2x', clean_latents_4x: 'cleanLatents4x', clean_latent_4x_indices: 'cleanLatentIndices4x',
};

describe.skipIf(!existsSync(caseDir))('step-skip hooks in sampleHunyuan on the tiny DiT', () => {
  let model: HunyuanVideoTransformer3DModelPacked;
  const pos: Record<string, Tensor> = {}, neg: Record<string, Tensor> = {};
  beforeAll(() => {
    const json = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
    const w = openSafetensors(join(caseDir, '..', json.weights_from, 'weights.safetensors'));
    model = HunyuanVideoTransformer3DModelPacked.fromWeights(json.config, w);
    w.close();
    const t = openSafetensors(join(caseDir, 'tensors.safetensors'));
    for (const k of t.keys().filter((k) => k.startsWith('in.'))) {
      const name = k.slice(3);
      if (SHARED[name]) pos[SHARED[name]] = neg[SHARED[name]] = t.tensor(k);
      else if (name.endsWith('_n')) neg[PROMPT[name.slice(0, -2)]] = t.tensor(k);
      else pos[PROMPT[name]] = t.tensor(k);
    }
    t.close();
  });
  afterAll(() => {
    T.disposeAll([pos, neg]);
    model?.dispose();
  });
  const run = async (steps: number, cfg: number, hookFor: (b: 'positive' | 'negative') => StepSkipHook) => {
    const calls: Pick<ModelCallContext, 'step' | 'branch'>[] = [];
    const out = await sampleHunyuan<Record<string, Tensor>>({
      model: (x, timestep, cond, ctx) => {
        calls.push({ step: ctx.step, branch: ctx.branch });
        const inputs = { ...cond, hiddenStates: x, timestep, guidance: ctx.guidance } as unknown as PackedDiTInputs;
        return model.forward(inputs, { stepSkip: hookFor(ctx.branch), step: ctx.step, totalSteps: ctx.totalSteps });
      },
      positive: pos,
      negative: cfg !== 1 ? neg : undefined,
      width: 128, height: 128, frames: 9, steps, cfg, gs: 6, rs: cfg !== 1 ? 0.7 : 0, seed: 4321, dtype: 'f32',
    });
    const finite = out.toFloat32Array().every(Number.isFinite);
    out.dispose();
    return { calls, finite };
  };

  it('real CFG: every branch hook advances once per step (MagCache, TeaCache)', async () => {
    const steps = 12;
    const every = [...Array(steps).keys()];

    // MagCache: the schedule depends only on the table, so both branches skip what a cfg = 1 run skips
    // (Original 320x320, 12 steps resampled from 25, E0.25 K3 R0.2: the magcache-sampling case's run1).
    const mag = createBranchHooks(() => new MagCache({ width: 320, height: 320, threshold: 0.25, maxConsecutiveSkips: 3, retentionRatio: 0.2 }));
    const m = await run(steps, 3, (b) => mag.forBranch(b));
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
    const r = await run(steps, 3, (b) => tea.forBranch(b));
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
    await expect(run(steps, 3, () => shared)).rejects.toThrow(/one hook per branch/);
    shared.dispose();
  });

  it('calibration: the curve is the mean per-token norm ratio of the residuals the DiT recorded', async () => {
    const steps = 6;
    const cal = new MagCacheCalibrator({ width: 640, height: 640 });
    const residuals: Float32Array[] = [];
    let tokens = 0, channels = 0;
    // forwards to the calibrator and keeps a float copy of every residual
    const spy: StepSkipHook = {
      shouldSkip: (ctx) => cal.shouldSkip(ctx),
      applySkip: (h) => cal.applySkip(h),
      record: (before, after) => {
        const a = after.toFloat32Array(), b = before.toFloat32Array();
        residuals.push(a.map((v, i) => v - b[i]));
        tokens = before.shape[0] * before.shape[1];
        channels = before.shape[2];
        cal.record(before, after);
      },
    };
    const { calls } = await run(steps, 1, () => spy);
    expect(calls.length).toBe(steps);
    const res = cal.result();
    expect(res.steps).toBe(steps);
    const norms = (r: Float32Array) => Array.from({ length: tokens }, (_, i) => Math.hypot(...r.subarray(i * channels, (i + 1) * channels)));
    const expected = [1];
    for (let s = 1; s < steps; s++) {
      const cur = norms(residuals[s]), prev = norms(residuals[s - 1]);
      expected.push(cur.reduce((acc, v, i) => acc + v / prev[i], 0) / tokens);
    }
    expect(res.ratios.length).toBe(steps);
    for (let s = 0; s < steps; s++) expect(Math.abs(res.ratios[s] - roundDecimalsHalfEven(expected[s], 5))).toBeLessThanOrEqual(1e-5 + 1e-12);
    // the new curve drives MagCache (table keyed by (640 + 640) / 2 and the step count)
    const hook = new MagCache({ width: 640, height: 640, ratios: res.ratios, threshold: 10, maxConsecutiveSkips: 2, retentionRatio: 0, maxRatioDeviation: 10 });
    await run(steps, 1, () => hook);
    expect(hook.stats.sections[0].skippedSteps).toEqual([1, 2, 4, 5]);
    cal.dispose();
    hook.dispose();
  });
});
