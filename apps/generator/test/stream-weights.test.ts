/**
 * `--stream-weights` / `streamWeights`: the DiT's streamed blocks stored in 8 bits (tiny family, CPU, the low-VRAM
 * plan forced as a small GPU would get it). A tiny job runs through the API to an MP4; bad values fail clearly.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeVideo } from '@framepack/video-io';
import { HunyuanVideoGenerator, largestBucket, loadComponents, planMemory, planModels, readModelShapes, resolveModelPaths, sidecarPath, type MemoryPlan } from '../src/index.js';

const root = resolve(__dirname, '../../..');
const image = join(root, 'apps/generator/assets/example.png');
const work = mkdtempSync(join(tmpdir(), 'fp-w8-'));
process.env.FRAMEPACK_CACHE = join(work, 'cache');
const job = { image, prompt: 'a boat', seconds: 0.8, window: 3, steps: 2, resolution: 128, seed: 5 };

/** The tiny family's plan with the DiT forced to stream (all but its first block) as `f`. */
function streamedPlan(f: 'int8' | 'fp8' | null): MemoryPlan {
  const paths = resolveModelPaths({ tiny: true });
  const [height, width] = largestBucket(128);
  const base = planMemory({ budgetBytes: 2 ** 40, bytesPerElement: 4, models: planModels(readModelShapes(paths), 4), job: { height, width, window: 3 }, reserveBytes: 0 });
  return { ...base, dit: { ...base.dit, mode: 'streamed', slots: 2, residentBlocks: 1, weights8bit: f } };
}

describe('--stream-weights (8-bit streamed DiT blocks)', () => {
  it('a tiny job with int8 streamed blocks writes its MP4; the video differs from the bf16-streamed one only by the quantization', async () => {
    const latents: Record<string, Float32Array> = {};
    for (const f of [null, 'int8'] as const) {
      const gen = await HunyuanVideoGenerator.load({ tiny: true, memoryPlan: streamedPlan(f), ...(f ? { streamWeights: f } : {}) });
      const out = join(work, `w8-${f ?? 'bf16'}.mp4`);
      try {
        const r = await gen.generateToFiles(job, { out, onLatents: (l) => void (latents[f ?? 'bf16'] = l.toFloat32Array()) });
        expect(r.files).toContain(out);
        expect(probeVideo(out)).toMatchObject({ frames: r.frames, width: 144, height: 112 });
        const side = JSON.parse(readFileSync(sidecarPath(out), 'utf8'));
        expect(side.models.memoryPlan.dit).toMatchObject({ mode: 'streamed', residentBlocks: 1, streamWeights: f ?? 'bf16' });
      } finally {
        gen.dispose();
      }
    }
    const a = latents.bf16, b = latents.int8;
    expect(a.length).toBe(b.length);
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += a[i] ** 2;
    }
    expect(num).toBeGreaterThan(0); // 8-bit weights are not the bf16 ones
    expect(Number.isFinite(Math.sqrt(num / den))).toBe(true);
  }, 240_000);

  it('refuses a bad format, 8-bit without a budget or plan, and a plan that says otherwise', async () => {
    await expect(loadComponents({ tiny: true, streamWeights: 'int4' as 'int8' })).rejects.toThrow(/--stream-weights must be one of bf16, int8, fp8/);
    await expect(loadComponents({ tiny: true, streamWeights: 'int8' })).rejects.toThrow(/--stream-weights int8 needs --vram-budget/);
    await expect(loadComponents({ tiny: true, streamWeights: 'fp8', memoryPlan: streamedPlan('int8') })).rejects.toThrow(/differs from the given memory plan/);
    // bf16 is the default and always accepted
    const c = await loadComponents({ tiny: true, streamWeights: 'bf16' });
    c.dispose();
  });

  it('the CLI validates --stream-weights and `models plan` shows it', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'apps/generator/src/cli.ts', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env } });
    let r = cli('generate', '--tiny', '--prompt', 'x', '--stream-weights', 'int4');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--stream-weights.*int4.*Allowed choices are bf16, int8, fp8/);
    r = cli('generate', '--tiny', '--prompt', 'x', '--stream-weights', 'int8', '--out', join(work, 'no.mp4'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--stream-weights int8 needs --vram-budget/);
    // the tiny DiT fits any budget resident: the plan says the flag has no effect
    r = cli('models', 'plan', '--tiny', '--vram-budget', '2', '--stream-weights', 'fp8', '--json');
    expect(r.status, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(line.dit).toMatchObject({ mode: 'resident' });
    expect(line.reasons.join('\n')).toMatch(/--stream-weights fp8 has no effect: the DiT is resident/);
  }, 120_000);
});
