/**
 * Where a job's results go. The MP4 is rewritten after every finished section as `<name>.partial.mp4` (each write is
 * atomic), renamed to the final name only when the whole job succeeds; a failed or cancelled job keeps the partial
 * file with the sections already made. A JSON sidecar records the parameters, models, timings and outcome.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Tensor } from '@framepack/tensor-core';
import { findFfmpeg, pixelsToFrames, writeMp4, writePngFrames } from '@framepack/video-io';
import { GeneratorError } from './errors.js';

export interface JobOutputOptions {
  /** Final MP4 path. */
  out?: string;
  /** Also (or, without `out`, only) write the final frames as PNGs into this folder: works without ffmpeg. */
  pngFramesDir?: string;
  crf?: number;
  fps?: number;
}

export interface Sidecar {
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  [key: string]: unknown;
}

export function partialPath(out: string): string {
  const ext = extname(out) || '.mp4';
  return join(dirname(out), `${basename(out, ext)}.partial${ext}`);
}
export function sidecarPath(out: string): string {
  const ext = extname(out);
  return join(dirname(out), `${ext ? basename(out, ext) : basename(out)}.json`);
}

export class JobOutput {
  readonly files: string[] = [];
  private sectionsWritten = 0;
  private lastPixels: Tensor | null = null;

  constructor(readonly opts: JobOutputOptions) {
    if (!opts.out && !opts.pngFramesDir) throw new GeneratorError('nowhere to write: give an output path (--out) or a PNG frames folder', 'BAD_PARAMS');
    if (opts.out) {
      findFfmpeg(); // fail before hours of work, with the install hint, when ffmpeg is missing
      mkdirSync(dirname(opts.out), { recursive: true });
    }
  }

  /** After each section: the whole video so far (B=1, 3, F, H, W in [-1, 1]). */
  async section(pixels: Tensor): Promise<void> {
    this.lastPixels = pixels;
    if (!this.opts.out) return;
    await writeMp4(partialPath(this.opts.out), pixelsToFrames(pixels), { crf: this.opts.crf, fps: this.opts.fps ?? 30 });
    this.sectionsWritten++;
  }

  /** The job finished: publish the final file(s) and the sidecar. Returns the written paths. */
  async complete(meta: Record<string, unknown>): Promise<string[]> {
    if (this.opts.out) {
      const partial = partialPath(this.opts.out);
      if (!existsSync(partial)) throw new GeneratorError('the job finished but no video was written', 'OUTPUT');
      renameSync(partial, this.opts.out);
      this.files.push(this.opts.out);
    }
    if (this.opts.pngFramesDir && this.lastPixels) {
      rmSync(this.opts.pngFramesDir, { recursive: true, force: true });
      this.files.push(...writePngFrames(this.opts.pngFramesDir, pixelsToFrames(this.lastPixels)));
    }
    this.writeSidecar({ status: 'completed', ...meta, outputs: this.files });
    return this.files;
  }

  /** The job failed or was cancelled: keep what was written and say so in the sidecar. */
  fail(status: 'failed' | 'cancelled', error: unknown, meta: Record<string, unknown>): void {
    const partial = this.opts.out ? partialPath(this.opts.out) : undefined;
    this.writeSidecar({
      status,
      ...meta,
      error: error instanceof Error ? error.message : String(error),
      partialOutput: partial && existsSync(partial) ? partial : null,
      sectionsWritten: this.sectionsWritten,
    });
  }

  private writeSidecar(s: Sidecar): void {
    const target = this.opts.out ? sidecarPath(this.opts.out) : join(this.opts.pngFramesDir!, 'job.json');
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
    renameSync(tmp, target);
  }
}
