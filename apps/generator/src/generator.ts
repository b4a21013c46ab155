/**
 * HunyuanVideoGenerator: load the models once, generate many videos. Async, cancellable with an AbortSignal, with
 * progress events; returns the frames and/or writes the MP4 (progressively), PNG frames and a JSON sidecar.
 */
import { GeneratorError } from './errors.js';
import { loadComponents, type LoadedComponents, type LoadOptions } from './components.js';
import type { MemoryPlan } from './memory-plan.js';
import { JobOutput } from './job-output.js';
import { resolveParams, type GenerateParams } from './params.js';
import { runJob, type Components, type JobResult, type RunOptions } from './pipeline.js';

export interface GenerateToFilesOptions extends RunOptions {
  out?: string;
  pngFramesDir?: string;
}

export interface FilesResult {
  files: string[];
  width: number;
  height: number;
  frames: number;
  sections: number;
  promptTruncated: boolean;
  stepSkipping?: { requests: number; hits: number; text: string };
  timings: Record<string, number>;
}

export class HunyuanVideoGenerator {
  private constructor(
    private readonly components: LoadedComponents,
    readonly options: LoadOptions,
  ) {}

  /** Resolve and load every model (the real checkpoints from the HF cache, or the embedded tiny family). */
  static async load(opts: LoadOptions = {}): Promise<HunyuanVideoGenerator> {
    return new HunyuanVideoGenerator(await loadComponents(opts), opts);
  }

  /** Generate and return the frames ((1, 3, F, H, W) in [-1, 1], f32, CPU; the caller disposes `pixels`). */
  async generate(params: Partial<GenerateParams> & { prompt: string }, opts: RunOptions = {}): Promise<JobResult> {
    this.checkMode(params);
    return runJob(this.components, resolveParams(params), opts);
  }

  /** Generate into files: the MP4 after every section (as .partial until done), PNG frames, a JSON sidecar. */
  async generateToFiles(params: Partial<GenerateParams> & { prompt?: string }, opts: GenerateToFilesOptions): Promise<FilesResult> {
    this.checkMode(params);
    const p = resolveParams(params);
    const output = new JobOutput({ out: opts.out, pngFramesDir: opts.pngFramesDir, crf: p.crf });
    const meta = () => ({ params: p, models: this.components.describe(), finishedAt: new Date().toISOString() });
    try {
      const r = await runJob(this.components, p, {
        ...opts,
        onSection: async (pixels, s, n) => {
          await output.section(pixels);
          await opts.onSection?.(pixels, s, n);
        },
      });
      try {
        const files = await output.complete({ ...meta(), frames: r.frames, width: r.width, height: r.height, sections: r.sections, timings: r.timings, promptTruncated: r.promptTruncated, stepSkipping: r.stepSkipping });
        return { files, width: r.width, height: r.height, frames: r.frames, sections: r.sections, promptTruncated: r.promptTruncated, stepSkipping: r.stepSkipping, timings: r.timings };
      } finally {
        r.pixels.dispose();
      }
    } catch (e) {
      output.fail(e instanceof GeneratorError && e.code === 'CANCELLED' ? 'cancelled' : 'failed', e, meta());
      throw e;
    }
  }

  /** What was loaded: family, paths, device, dtype, merged LoRAs. */
  get models(): Record<string, unknown> {
    return this.components.describe();
  }

  /** The low-VRAM memory plan the models were loaded with (null without a VRAM budget). */
  get memoryPlan(): MemoryPlan | null {
    return this.components.memoryPlan;
  }

  /** Free the model weights. */
  dispose(): void {
    this.components.dispose();
  }

  private checkMode(params: Partial<GenerateParams>) {
    const mode = params.mode ?? 'original';
    if (this.options.mode && mode !== this.options.mode && !this.options.tiny) {
      throw new GeneratorError(`this generator was loaded with the ${this.options.mode} transformer; load another for mode ${mode}`, 'BAD_PARAMS');
    }
  }
}

