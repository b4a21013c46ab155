import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { largestBucket, loadComponents, resolveModelPaths, resolveParams, runJob, planMemory, planModels, readModelShapes, type MemoryPlan } from '@framepack/generator';

const image = resolve(__dirname, '../assets/example.png');
process.env.FRAMEPACK_CACHE = join(mkdtempSync(join(tmpdir(), 'fp-lowvram-')), 'cache');
const params = resolveParams({ image, prompt: 'a cat', seconds: 0.8, window: 3, steps: 2, resolution: 128, seed: 7 });

/** The tiny family's plan at a huge budget, then every low-VRAM choice forced: the code path a small GPU takes. */
function lowVramPlan(): MemoryPlan {
  const paths = resolveModelPaths({ tiny: true });
  const [height, width] = largestBucket(128);
  const base = planMemory({ budgetBytes: 2 ** 40, bytesPerElement: 4, models: planModels(readModelShapes(paths), 4), job: { height, width, window: 3 }, reserveBytes: 0 });
  expect(base.dit.mode).toBe('resident');
  return {
    ...base,
    dit: { ...base.dit, mode: 'streamed', slots: 2, residentBlocks: 1 },
    llama: { ...base.llama, mode: 'streamed', slots: 1, hostCopy: 'source', lifetime: 'per-job' },
    clip: { ...base.clip, lifetime: 'per-job' },
    siglip: { ...base.siglip, mode: 'streamed', slots: 2, lifetime: 'per-job' },
  };
}

describe('low-VRAM plan wired into the generator (tiny family, CPU)', () => {
  it('streams the DiT and encoders, loads encoders per job and frees them, with the exact same video', async () => {
    const before = T.memoryStats('cpu').currentBytes;
    const resident = await loadComponents({ tiny: true });
    const residentHeld = T.memoryStats('cpu').currentBytes - before;
    const ref = await runJob(resident, params);
    resident.dispose();

    const start = T.memoryStats('cpu').currentBytes;
    const low = await loadComponents({ tiny: true, memoryPlan: lowVramPlan() });
    // nothing per-job is loaded yet, and the DiT's streamed blocks sit in host buffers
    expect(low.loaded()).toEqual({ llama: false, clip: false, siglip: false });
    expect(T.memoryStats('cpu').currentBytes - start).toBeLessThan(residentHeld);
    expect(low.describe().memoryPlan).toMatchObject({ dit: { mode: 'streamed', slots: 2, residentBlocks: 1 }, llama: { mode: 'streamed', lifetime: 'per-job' } });

    let loadedWhileSampling: ReturnType<typeof low.loaded> | null = null;
    const out = await runJob(low, params, { onProgress: (e) => void (e.stage === 'sample' && (loadedWhileSampling ??= low.loaded())) });
    // the encoders were freed before sampling began
    expect(loadedWhileSampling).toEqual({ llama: false, clip: false, siglip: false });
    expect(low.loaded()).toEqual({ llama: false, clip: false, siglip: false });
    expect(out.frames).toBe(ref.frames);
    const a = out.pixels.toFloat32Array(), b = ref.pixels.toFloat32Array();
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff).toBe(0);

    // a second job loads the per-job encoders again
    const again = await runJob(low, params);
    expect(again.pixels.toFloat32Array()).toEqual(a);
    // a job larger than the plan's shape is refused (before it could run out of memory mid-way), encoders freed
    await expect(runJob(low, { ...params, window: 4 })).rejects.toThrow(/larger than the 128x128, window 3 the memory plan was made for/);
    expect(low.loaded()).toEqual({ llama: false, clip: false, siglip: false });
    for (const r of [ref, out, again]) r.pixels.dispose();
    low.dispose();
  }, 240_000);

  it('refuses a VRAM budget on the CPU', async () => {
    await expect(loadComponents({ tiny: true, vramBudgetGiB: 8 })).rejects.toThrow(/applies to --device cuda/);
  });

  it('`framepack models plan` prints the plan (JSON or text) and fails when nothing fits', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'apps/generator/src/cli.ts', 'models', 'plan', '--tiny', ...args], {
        cwd: resolve(__dirname, '../../..'), encoding: 'utf8', env: { ...process.env },
      });
    let r = cli('--vram-budget', '2', '--resolution', '256', '--json');
    expect(r.status, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({ event: 'memory-plan', budgetGiB: 2, allocatorBudgetGiB: 1.25, dit: { mode: 'resident' }, llama: { mode: 'resident', lifetime: 'kept' } });
    expect(line.reasons[0]).toMatch(/budget 2.00 GiB/);
    r = cli('--vram-budget', '2');
    expect(r.stdout).toMatch(/memory plan for 2.00 GiB: DiT resident[\s\S]*  - everything fits resident[\s\S]*  > start-up: load DiT/);
    r = cli('--vram-budget', '0.5');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/DOES NOT FIT/);
    expect(r.stderr).toMatch(/\[OUT_OF_MEMORY\].*lower --resolution or --window, or raise --vram-budget/);
  }, 120_000);

  it('plans for the largest bucket of the row the resolution selects', () => {
    expect(largestBucket(640)).toEqual([640, 640]);
    expect(largestBucket(512)).toEqual([512, 512]);
    expect(largestBucket(720)).toEqual([768, 768]); // 720 is nearer the 768 row
    expect(largestBucket(704)).toEqual([640, 640]); // a tie goes to the smaller row, as findNearestBucket
    expect(largestBucket(128)).toEqual([128, 128]);
  });
});
