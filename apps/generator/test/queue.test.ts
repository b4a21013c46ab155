/** The generator behind the queue: `framepack queue add` + `framepack worker --once` on the tiny family. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Queue } from '@framepack/queue';
import { probeVideo } from '@framepack/video-io';
import { validateJobParams } from '../src/queue-jobs.js';

const root = resolve(__dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'fp-queue-'));
const env = { ...process.env, FRAMEPACK_QUEUE_DB: join(work, 'q.sqlite'), FRAMEPACK_OUTPUT_DIR: join(work, 'out'), FRAMEPACK_CACHE: join(work, 'cache') };
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--conditions=source', '--import', 'tsx', 'apps/generator/src/cli.ts', ...args], { cwd: root, encoding: 'utf8', env });

describe('queue jobs', () => {
  it('validates job parameters like the CLI', () => {
    expect(() => validateJobParams({ prompt: 'x', seconds: 0 })).toThrow(/seconds/);
    expect(() => validateJobParams({ prompt: 'x', nope: 1 })).toThrow(/unknown parameter 'nope'/);
    expect(() => validateJobParams({ prompt: 'x', image: join(work, 'missing.png') })).toThrow(/no such file/);
    expect(() => validateJobParams({ prompt: 'x', loras: [{ path: 'a' }] })).toThrow(/loras/);
    expect(() => validateJobParams({ prompt: 'x', device: 'cuda', vramBudget: 0 })).toThrow(/vramBudget must be a positive number/);
    expect(() => validateJobParams({ prompt: 'x', vramBudget: 8 })).toThrow(/vramBudget applies to device 'cuda'/);
    expect(validateJobParams({ prompt: 'x', device: 'cuda', vramBudget: 8 })).toMatchObject({ vramBudget: 8 });
    expect(validateJobParams({ prompt: 'x', tiny: true })).toMatchObject({ prompt: 'x', tiny: true, steps: 25 });
    const rel = join('apps/generator/assets/example.png');
    const cwd = process.cwd();
    process.chdir(root);
    try {
      expect(validateJobParams({ prompt: 'x', image: rel }).image).toBe(join(root, rel));
    } finally {
      process.chdir(cwd);
    }
  });

  it('a worker runs a queued job to a finished MP4', () => {
    const image = join(root, 'apps/generator/assets/example.png');
    const params = { tiny: true, image, prompt: 'a boat', seconds: 0.8, window: 3, steps: 2, resolution: 128 };
    let r = cli('queue', 'add', JSON.stringify(params));
    expect(r.status, r.stderr).toBe(0);
    r = cli('queue', 'add', JSON.stringify({ prompt: 'x', seconds: -1 }));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/seconds must be/);
    r = cli('worker', '--once');
    expect(r.status, r.stderr).toBe(0);
    const q = Queue.open(env.FRAMEPACK_QUEUE_DB);
    try {
      const jobs = q.list();
      expect(jobs.map((j) => j.status)).toEqual(['completed']);
      const video = jobs[0].outputs.find((o) => o.kind === 'video')!;
      expect(probeVideo(video.path).frames).toBe(25);
    } finally {
      q.close();
    }
  }, 240_000);
});
