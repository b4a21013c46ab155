import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { openSafetensors } from '@framepack/safetensors';
import { HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs } from '@framepack/dit-model';
// by path: a package dependency on the golden runner would make a cycle (the runner depends on this package)
import { defaultGoldenDir, formatResult, relL2, runGoldenDir } from '../../../tooling/golden/src/index.js';

const golden = defaultGoldenDir();
const packedDir = join(golden, 'dit-packed-forward');

describe.skipIf(!existsSync(golden))('golden dit-forward', () => {
  it('every dit-forward case passes', async () => {
    const results = await runGoldenDir(golden, { only: ['dit-forward'] });
    for (const r of results) console.log(formatResult(r), `${r.seconds.toFixed(2)} s`);
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect({ case: r.case, status: r.status, error: r.error }).toEqual({ case: r.case, status: 'pass', error: undefined });
  });
  it('every dit-forward case passes with bf16 storage (the half-precision tolerance)', async () => {
    const results = await runGoldenDir(golden, { only: ['dit-forward'], dtype: 'bf16' });
    for (const r of results) console.log(formatResult(r), `${r.seconds.toFixed(2)} s`);
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect({ case: r.case, status: r.status, error: r.error }).toEqual({ case: r.case, status: 'pass', error: undefined });
  });
});

/** The reference forward's argument names -> PackedDiTInputs fields (as the golden kind maps them). */
const ARGS: Record<string, keyof PackedDiTInputs> = {
  hidden_states: 'hiddenStates', timestep: 'timestep', encoder_hidden_states: 'encoderHiddenStates',
  encoder_attention_mask: 'encoderAttentionMask', pooled_projections: 'pooledProjections', guidance: 'guidance',
  latent_indices: 'latentIndices', clean_latents: 'cleanLatents', clean_latent_indices: 'cleanLatentIndices',
  clean_latents_2x: 'cleanLatents2x', clean_latent_2x_indices: 'cleanLatentIndices2x', clean_latents_4x: 'cleanLatents4x',
  clean_latent_4x_indices: 'cleanLatentIndices4x', image_embeddings: 'imageEmbeddings',
};

describe.skipIf(!existsSync(packedDir))('dit-packed-forward intermediates', () => {
  it('matches every dbg.* tensor (localises a mismatch to its module)', () => {
    const json = JSON.parse(readFileSync(join(packedDir, 'case.json'), 'utf8'));
    const limit: number = json.tolerance.max_rel_l2;
    const w = openSafetensors(join(packedDir, 'weights.safetensors'));
    const model = HunyuanVideoTransformer3DModelPacked.fromWeights(json.config, w);
    w.close();
    const t = openSafetensors(join(packedDir, 'tensors.safetensors'));
    const inputs: Partial<Record<keyof PackedDiTInputs, T.Tensor>> = {};
    for (const k of t.keys().filter((k) => k.startsWith('in.'))) inputs[ARGS[k.slice(3)]] = t.tensor(k);
    const errors: Record<string, number> = {};
    const out = model.forward(inputs as PackedDiTInputs, {
      debug: (name, x) => {
        const key = `dbg.${name}`;
        if (!t.has(key)) return;
        expect([...x.shape], key).toEqual(t.info(key).shape);
        errors[name] = relL2(x.toFloat32Array(), t.readF32(key));
      },
    });
    errors.out = relL2(out.toFloat32Array(), t.readF32('out.sample'));
    console.log(Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join('\n'));
    const dbgKeys = t.keys().filter((k) => k.startsWith('dbg.')).map((k) => k.slice(4));
    expect(Object.keys(errors).sort()).toEqual([...dbgKeys, 'out'].sort());
    for (const [k, v] of Object.entries(errors)) expect(v, k).toBeLessThanOrEqual(limit);
    T.disposeAll([out, inputs]);
    model.dispose();
    t.close();
  });
});
