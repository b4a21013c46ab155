/**
 * End to end on the embedded tiny model family: the CLI writes a real MP4 that ffprobe reads with the expected frame
 * count, and the API runs every mode (original, F1, text-to-video, end frame, real CFG with TeaCache, MagCache),
 * cancellation (partial output kept) and the input errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeVideo } from '@framepack/video-io';
import { GeneratorError, HunyuanVideoGenerator, partialPath, sidecarPath } from '../src/index.js';

const root = resolve(__dirname, '../../..');
const image = join(root, 'apps/generator/assets/example.png');
const work = mkdtempSync(join(tmpdir(), 'fp-e2e-'));
process.env.FRAMEPACK_CACHE = join(work, 'cache');
// small and fast: window 3, 2 sections (0.8 s), 2 steps, the 128 bucket (144x112 for this 4:3 image)
const quick = { seconds: 0.8, window: 3, steps: 2, resolution: 128 };
const framesFor = (sections: number, window: number) => 4 * window * sections + 1;

describe('framepack CLI', () => {
  it('writes an MP4 with the expected frames, a sidecar, and no partial file', () => {
    const out = join(work, 'cli.mp4');
    const r = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'apps/generator/src/cli.ts', 'generate', '--tiny', '--image', image, '--prompt', 'a boat', '--seconds', '0.8', '--window', '3', '--steps', '2', '--resolution', '128', '--out', out],
      { cwd: root, encoding: 'utf8', env: { ...process.env } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/NOT meaningful/);
    const info = probeVideo(out);
    expect(info).toMatchObject({ frames: framesFor(2, 3), width: 144, height: 112 });
    expect(existsSync(partialPath(out))).toBe(false);
    expect(JSON.parse(readFileSync(sidecarPath(out), 'utf8'))).toMatchObject({ status: 'completed', frames: 25, params: { seed: 31337, mode: 'original' } });
  }, 240_000);

  it('fails clearly on bad input', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'apps/generator/src/cli.ts', 'generate', ...args], {
        cwd: root, encoding: 'utf8', env: { ...process.env, HF_HOME: join(work, 'empty-hf') },
      });
    let r = run('--tiny', '--image', join(work, 'nope.png'), '--prompt', 'x', '--out', join(work, 'x.mp4'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[BAD_IMAGE\].*no such file/);
    r = run('--tiny', '--image', image, '--prompt', 'x', '--seconds', '0');
    expect(r.stderr, r.stderr).toMatch(/\[BAD_PARAMS\]: seconds must be/);
    r = run('--image', image, '--prompt', 'x');
    expect(r.stderr).toMatch(/\[MODELS_MISSING\][\s\S]*transformer[\s\S]*framepack models pull/);
    const bad = join(work, 'bad.png');
    writeFileSync(bad, 'not a png');
    r = run('--tiny', '--image', bad, '--prompt', 'x', '--out', join(work, 'y.mp4'));
    expect(r.stderr).toMatch(/\[BAD_IMAGE\]/);
  }, 120_000);
});

describe('HunyuanVideoGenerator on the tiny family', () => {
  let gen: HunyuanVideoGenerator;
  beforeAll(async () => {
    gen = await HunyuanVideoGenerator.load({ tiny: true });
  });
  afterAll(() => gen?.dispose());

  it('F1 mode', async () => {
    const r = await gen.generateToFiles({ ...quick, image, prompt: 'a boat', mode: 'f1' }, { out: join(work, 'f1.mp4') });
    expect(r.frames).toBe(framesFor(2, 3));
    expect(probeVideo(join(work, 'f1.mp4')).frames).toBe(25);
  }, 240_000);

  it('text-to-video (no image) and PNG frames without an MP4', async () => {
    const dir = join(work, 't2v-frames');
    const r = await gen.generateToFiles({ ...quick, prompt: 'a storm at sea', mode: 'original' }, { pngFramesDir: dir });
    expect(r.frames).toBe(4 * 3 * 2 - 3);
    expect(r.files.length).toBe(r.frames);
    expect(existsSync(join(dir, 'frame_00000.png'))).toBe(true);
  }, 240_000);

  it('end frame, real CFG with TeaCache, a long prompt (truncated, and said so)', async () => {
    const r = await gen.generate({ ...quick, image, endImage: image, prompt: 'waves '.repeat(80), cfg: 2, negativePrompt: 'blurry', cache: 'teacache', seed: 7 });
    expect(r.frames).toBe(25);
    expect(r.promptTruncated).toBe(true);
    expect(r.stepSkipping?.requests).toBe(2 * 2 * 2); // 2 sections x 2 steps x 2 CFG branches, one hook per branch
    const v = r.pixels.toFloat32Array();
    expect(v.every(Number.isFinite)).toBe(true);
    r.pixels.dispose();
  }, 240_000);

  it('MagCache, and the same seed gives the same video', async () => {
    const a = await gen.generate({ ...quick, image, prompt: 'a boat', cache: 'magcache', steps: 4 });
    const b = await gen.generate({ ...quick, image, prompt: 'a boat', cache: 'magcache', steps: 4 });
    expect(a.pixels.toFloat32Array()).toEqual(b.pixels.toFloat32Array());
    a.pixels.dispose();
    b.pixels.dispose();
  }, 240_000);

  it('cancellation keeps the finished sections as a partial file and records it', async () => {
    const out = join(work, 'cancelled.mp4');
    const controller = new AbortController();
    const job = gen.generateToFiles({ ...quick, image, prompt: 'a boat' }, { out, signal: controller.signal, onSection: async () => controller.abort() });
    await expect(job).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(existsSync(out)).toBe(false);
    expect(probeVideo(partialPath(out)).frames).toBe(4 * 3 - 3); // the first section's frames
    expect(JSON.parse(readFileSync(sidecarPath(out), 'utf8'))).toMatchObject({ status: 'cancelled', sectionsWritten: 1 });
  }, 240_000);

  it('rejects bad parameters before any work', async () => {
    await expect(gen.generate({ image, prompt: 'x', steps: 0 })).rejects.toBeInstanceOf(GeneratorError);
  });
});


describe('LoRA and timestamped prompts through the generator', () => {
  it('merges a LoRA into the tiny DiT and blends per-section prompts', async () => {
    const T = await import('@framepack/tensor-core');
    const { writeSafetensors } = await import('@framepack/safetensors');
    const lora = join(work, 'tiny-lora.safetensors');
    const r = 2;
    writeSafetensors(lora, {
      'transformer.transformer_blocks.0.attn.to_q.lora_A.weight': T.full([r, 32], 0.05),
      'transformer.transformer_blocks.0.attn.to_q.lora_B.weight': T.full([32, r], 0.05),
    });
    const gen = await HunyuanVideoGenerator.load({ tiny: true, loras: [{ path: lora, weight: 0.7 }] });
    try {
      expect(gen.models.loras).toEqual([{ path: lora, weight: 0.7, format: 'diffusers', modules: 1, unmatched: 0 }]);
      const out = await gen.generate({ ...quick, image, prompt: '[0s: a boat drifts] [0.4s: the boat sinks]' });
      expect(out.frames).toBe(25);
      out.pixels.dispose();
      await expect(gen.generate({ ...quick, image, prompt: '[0s: a boat' })).rejects.toMatchObject({ code: 'BAD_PARAMS' });
    } finally {
      gen.dispose();
    }
  }, 240_000);
});
