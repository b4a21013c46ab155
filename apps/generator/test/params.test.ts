import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { GeneratorError } from '../src/errors.js';
import { JobOutput, partialPath, sidecarPath } from '../src/job-output.js';
import { DEFAULTS, resolveParams } from '../src/params.js';

describe('resolveParams', () => {
  it('fills FramePack defaults', () => {
    const p = resolveParams({ prompt: 'x' });
    expect(p).toMatchObject({ seconds: 5, steps: 25, gs: 10, cfg: 1, rs: 0, seed: 31337, window: 9, resolution: 640, mode: 'original', crf: 16 });
    expect(p.cache).toBe(DEFAULTS.cache);
  });
  it.each([
    [{ seconds: 0 }, 'seconds'],
    [{ seconds: -1 }, 'seconds'],
    [{ steps: 2.5 }, 'steps'],
    [{ cfg: 0.5 }, 'cfg'],
    [{ window: 0 }, 'window'],
    [{ mode: 'sideways' as never }, 'mode'],
    [{ crf: 99 }, 'crf'],
    [{ endImage: 'e.png', image: 'a.png', mode: 'f1' as const }, 'endImage'],
    [{ endImage: 'e.png' }, 'endImage'],
  ])('rejects %j naming %s', (bad, param) => {
    try {
      resolveParams({ prompt: 'x', ...bad });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GeneratorError);
      expect((e as GeneratorError).code).toBe('BAD_PARAMS');
      expect((e as GeneratorError).details.param).toBe(param);
    }
  });
  it('requires a prompt', () => expect(() => resolveParams({})).toThrow(/prompt is required/));
  it('accepts numeric strings from JSON/CLI sources', () => expect(resolveParams({ prompt: 'x', seconds: '2.5' as never }).seconds).toBe(2.5));
});

describe('JobOutput', () => {
  const px = (frames: number) => T.tidy(() => T.affine(T.reshape(T.arange(0, 3 * frames * 16 * 16), [1, 3, frames, 16, 16]), 1 / (3 * frames * 256), -0.5));

  it('names the file partial until the job completes, then writes the sidecar', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fp-out-'));
    const out = join(dir, 'clip.mp4');
    const o = new JobOutput({ out, crf: 20 });
    const a = px(5);
    await o.section(a);
    expect(existsSync(partialPath(out))).toBe(true);
    expect(existsSync(out)).toBe(false);
    const b = px(9);
    await o.section(b);
    const files = await o.complete({ frames: 9 });
    expect(files).toEqual([out]);
    expect(existsSync(partialPath(out))).toBe(false);
    const meta = JSON.parse(readFileSync(sidecarPath(out), 'utf8'));
    expect(meta).toMatchObject({ status: 'completed', frames: 9, outputs: [out] });
    a.dispose();
    b.dispose();
  });

  it('keeps the partial file and records the failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fp-out-'));
    const out = join(dir, 'clip.mp4');
    const o = new JobOutput({ out });
    const a = px(5);
    await o.section(a);
    o.fail('cancelled', new Error('stopped by the user'), { seed: 1 });
    expect(existsSync(partialPath(out))).toBe(true);
    const meta = JSON.parse(readFileSync(sidecarPath(out), 'utf8'));
    expect(meta).toMatchObject({ status: 'cancelled', error: 'stopped by the user', sectionsWritten: 1, partialOutput: partialPath(out) });
    a.dispose();
  });

  it('needs somewhere to write', () => expect(() => new JobOutput({})).toThrow(/nowhere to write/));
});
