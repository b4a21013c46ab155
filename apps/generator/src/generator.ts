/**
 * HunyuanVideoGenerator: load the models once, generate many videos. Async, cancellable with an AbortSignal, with
 * progress events; returns the frames and/or writes the MP4 (progressively), PNG frames and a JSON sidecar.
 */
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import { GeneratorError } from './errors.js';
import { loadComponents, type LoadedComponents, type LoadOptions } from './components.js';
import type { MemoryPlan } from './memory-plan.js';
import { JobOutput } from './job-output.js';
import { resolveParams, type GenerateParams } from './params.js';
import { runJob, type Components, type JobResult, type MemoryProbe, type RunOptions, type StagePeak } from './pipeline.js';

export interface GenerateToFilesOptions extends RunOptions {
  out?: string;
  pngFramesDir?: string;
  /** Also write the generated latents (1, C, t, h, w; f32) as a safetensors file (key `latents`), e.g. to compare runs. */
  saveLatents?: string;
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
  /**
   * Device memory per stage (allocator peaks, GiB; `load`: loading the models, `job`: the highest over the job) and
   * the process's peak host memory (max RSS, GiB) so far.
   */
  memory: { device: string; stages: Record<string, StagePeak>; hostMaxRssGiB: number };
}

export class HunyuanVideoGenerator {
  private constructor(
    private readonly components: LoadedComponents,
    readonly options: LoadOptions,
    /** Seconds spent loading the models, and the device peak while they loaded. */
    readonly loadStats: { seconds: number; peak: StagePeak },
  ) {}

  /** Resolve and load every model (the real checkpoints from the HF cache, or the embedded tiny family). */
  static async load(opts: LoadOptions = {}): Promise<HunyuanVideoGenerator> {
    const probe = memoryProbe(opts.device ?? 'cpu');
    probe.resetPeak();
    const t0 = performance.now();
    const components = await loadComponents(opts);
    probe.synchronize();
    const m = probe.read();
    return new HunyuanVideoGenerator(components, opts, { seconds: (performance.now() - t0) / 1000, peak: { peakAllocatedGiB: gib(m.peakAllocatedBytes), peakReservedGiB: gib(m.peakReservedBytes) } });
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
    const saveLatents = opts.saveLatents;
    const soFar: NonNullable<RunOptions['progressStats']> = {};
    try {
      const r = await runJob(this.components, p, {
        memory: memoryProbe(this.options.device ?? 'cpu'),
        progressStats: soFar,
        ...opts,
        onLatents: async (latents) => {
          if (saveLatents) writeSafetensors(saveLatents, { latents }, { framepack: 'generated latents (1, C, t, h, w)' });
          await opts.onLatents?.(latents);
        },
        onSection: async (pixels, s, n) => {
          await output.section(pixels);
          await opts.onSection?.(pixels, s, n);
        },
      });
      try {
        const timings = { load: this.loadStats.seconds, ...r.timings };
        const memory = { device: this.options.device ?? 'cpu', stages: { load: this.loadStats.peak, ...r.memory }, hostMaxRssGiB: gib(process.resourceUsage().maxRSS * 1024) };
        const files = await output.complete({ ...meta(), frames: r.frames, width: r.width, height: r.height, sections: r.sections, timings, memory, promptTruncated: r.promptTruncated, stepSkipping: r.stepSkipping, ...(saveLatents ? { latents: saveLatents } : {}) });
        if (saveLatents) files.push(saveLatents);
        return { files, width: r.width, height: r.height, frames: r.frames, sections: r.sections, promptTruncated: r.promptTruncated, stepSkipping: r.stepSkipping, timings, memory };
      } finally {
        r.pixels.dispose();
      }
    } catch (e) {
      // how far the job got: the stages that finished, their times and device peaks
      const memory = { device: this.options.device ?? 'cpu', stages: { load: this.loadStats.peak, ...soFar.memory }, hostMaxRssGiB: gib(process.resourceUsage().maxRSS * 1024) };
      output.fail(e instanceof GeneratorError && e.code === 'CANCELLED' ? 'cancelled' : 'failed', e, { ...meta(), timings: { load: this.loadStats.seconds, ...soFar.timings }, memory });
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


const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));

/** The allocator's statistics for a device: the CUDA caching allocator (live and held bytes), or the CPU's live tensors. */
export function memoryProbe(device: T.DeviceType): MemoryProbe {
  if (device === 'cuda') {
    return {
      read: () => {
        const s = T.cudaAllocatorStats();
        return { allocatedBytes: s.allocatedBytes, reservedBytes: s.reservedBytes, peakAllocatedBytes: s.peakAllocatedBytes, peakReservedBytes: s.peakReservedBytes };
      },
      resetPeak: () => T.cudaResetPeak(),
      synchronize: () => T.cudaSynchronize(),
    };
  }
  return {
    read: () => {
      const s = T.memoryStats(device);
      return { allocatedBytes: s.currentBytes, reservedBytes: s.currentBytes, peakAllocatedBytes: s.peakBytes, peakReservedBytes: s.peakBytes };
    },
    resetPeak: () => T.resetPeakMemory(device),
    synchronize: () => undefined,
  };
}
