/**
 * One generation job from parameters to frames: preprocessing, encoders, the section loop with the sampler and the
 * DiT, VAE decode, and progressive output. Everything numeric goes through `Components`, bound to the real packages
 * in components.ts, so this file is only the FramePack worker's control flow.
 */
import * as T from '@framepack/tensor-core';
import { parsePromptSchedule, sectionConditioning, PromptBlenderError } from '@framepack/prompt-blender';
import { imageToTensor, type RgbImage } from '@framepack/video-io';

export type { RgbImage };
import { GeneratorError } from './errors.js';
import type { GenerateParams } from './params.js';
import { expectedPixelFrames, GenerationCancelledError, runSectionLoop, totalSections, type SectionInputs } from './section-loop.js';

/** LLaMA features padded to 512 with their mask, and the CLIP pooled vector (FramePack's encode_prompt_conds). */
export interface TextConds {
  llamaVec: T.Tensor;
  llamaMask: T.Tensor;
  clipPooler: T.Tensor;
}

export interface JobNoise {
  randn(shape: number[]): T.Tensor;
}


export interface SampleRequest {
  section: SectionInputs;
  positive: TextConds;
  negative: TextConds;
  imageEmbeddings: T.Tensor;
  width: number;
  height: number;
  params: GenerateParams;
  /** The job's noise source (from Components.noise), shared by every section. */
  noise: JobNoise;
  onStep(step: number, totalSteps: number, denoised: T.Tensor): void;
  /** Step-skipping outcome of this section (TeaCache/MagCache), e.g. 'MagCache skipped 7/25 steps (28.0%)'. */
  onStats?(summary: { requests: number; hits: number; text: string }): void;
  signal?: AbortSignal;
}

/** The numeric pieces a job needs. */
export interface Components {
  /** Human-readable description of the loaded models (for logs and the sidecar). */
  describe(): Record<string, unknown>;
  /** Tokens kept from a prompt and whether it was truncated. */
  encodePrompt(prompt: string): Promise<TextConds & { truncated: boolean; tokens: number }>;
  encodeImage(image: RgbImage): Promise<T.Tensor>;
  /**
   * The job is done with the text encoders ('text') or the image encoder ('image'): the ones the memory plan
   * loads per job are freed (the DiT samples without them). Idempotent; the next job loads them again.
   */
  release?(stage: 'text' | 'image'): void;
  /** Pixels (1, 3, 1, H, W) in [-1, 1] -> latent (1, C, 1, H/8, W/8), scaled. */
  vaeEncode(pixels: T.Tensor): Promise<T.Tensor>;
  /** Scaled latents (1, C, t, h, w) -> pixels (1, 3, 4t-3, 8h, 8w) on the VAE's device (the section loop moves them). */
  vaeDecode(latents: T.Tensor): Promise<T.Tensor>;
  /** Latent -> RGB preview image, frames side by side (FramePack's live preview). */
  preview(latents: T.Tensor): RgbImage;
  /** Load an image, fit it to the resolution bucket (resize + centre crop). */
  loadImage(path: string, resolution: number): Promise<RgbImage>;
  /** The bucket (height, width) for a size at a resolution. */
  bucket(height: number, width: number, resolution: number): [number, number];
  /** Denoise one section's window: (1, C, window, h, w). */
  sample(req: SampleRequest): Promise<T.Tensor>;
  /** The job's noise source, seeded once and shared by every section (torch-compatible). */
  noise(seed: number): JobNoise;
  latentChannels: number;
}

export type Stage = 'encode' | 'sample' | 'decode' | 'write' | 'done';

export interface ProgressEvent {
  stage: Stage;
  section: number;
  totalSections: number;
  step: number;
  totalSteps: number;
  /** 0..1 over the whole job. */
  fraction: number;
  message?: string;
  /** Latent -> RGB preview of the current x0 estimate (only when asked for). */
  preview?: RgbImage;
}

/** Device-memory statistics of the device the components run on (the allocator's view). */
export interface MemoryProbe {
  /** Bytes in live tensors and bytes held from the driver (live + cached; equal on the CPU), with their peaks. */
  read(): { allocatedBytes: number; reservedBytes: number; peakAllocatedBytes: number; peakReservedBytes: number };
  /** Start a new peak window (at a stage's start). */
  resetPeak(): void;
  /** Wait for queued device work, so a stage's time and peak are its own. */
  synchronize(): void;
}

/** Peak device memory of one stage (GiB): live tensors and what the allocator held. */
export interface StagePeak {
  peakAllocatedGiB: number;
  peakReservedGiB: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /**
   * Per-stage device-memory peaks and synchronised stage times (textEncode, imageEncode, vaeEncode, sample,
   * decode) go into `JobResult.memory` / `timings`.
   */
  memory?: MemoryProbe;
  /**
   * Filled as the job runs with the stage times and peaks so far (`timings`, `memory`), so a job that fails can
   * still say how far it got and what it used.
   */
  progressStats?: { timings?: Record<string, number>; memory?: Record<string, StagePeak> };
  /** The generated latents of the whole video (1, C, t, h, w; f32, CPU) before they are freed (e.g. to save them). */
  onLatents?(latents: T.Tensor): void | Promise<void>;
  onProgress?(e: ProgressEvent): void;
  /** Compute previews for progress events. */
  previews?: boolean;
  /** Called with the whole video so far after each section. */
  onSection?(pixels: T.Tensor, section: number, totalSections: number): Promise<void>;
}

export interface JobResult {
  /** (1, 3, F, H, W) in [-1, 1], f32 on the CPU. Caller disposes. */
  pixels: T.Tensor;
  width: number;
  height: number;
  frames: number;
  sections: number;
  promptTruncated: boolean;
  /** With --teacache/--magcache: model calls decided and skipped over the job. */
  stepSkipping?: { requests: number; hits: number; text: string };
  timings: Record<string, number>;
  /** With `RunOptions.memory`: each stage's device peak, and `job`, the highest over the job. */
  memory?: Record<string, StagePeak>;
}

const black = (height: number, width: number): RgbImage => ({ width, height, data: new Uint8Array(width * height * 3) });

export async function runJob(c: Components, params: GenerateParams, opts: RunOptions = {}): Promise<JobResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  if (opts.progressStats) opts.progressStats.timings = timings;
  const mark = (name: string, since: number) => (timings[name] = (timings[name] ?? 0) + (performance.now() - since) / 1000);
  // stage windows: time (synchronised with the device) and device peak; a stage that recurs keeps its highest peak
  const probe = opts.memory;
  const memory: Record<string, StagePeak> | undefined = probe ? {} : undefined;
  if (opts.progressStats && memory) opts.progressStats.memory = memory;
  const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));
  const stageStart = () => {
    probe?.synchronize();
    probe?.resetPeak();
    return performance.now();
  };
  const stageEnd = (name: string, since: number) => {
    if (probe && memory) {
      probe.synchronize();
      const m = probe.read();
      for (const key of [name, 'job']) {
        const prev = memory[key];
        memory[key] = { peakAllocatedGiB: Math.max(prev?.peakAllocatedGiB ?? 0, gib(m.peakAllocatedBytes)), peakReservedGiB: Math.max(prev?.peakReservedGiB ?? 0, gib(m.peakReservedBytes)) };
      }
    }
    mark(name, since);
  };
  const sections = totalSections(params.seconds, params.window);
  const stepsTotal = sections * params.steps;
  let stepsDone = 0;
  const progress = (e: Omit<ProgressEvent, 'totalSections' | 'totalSteps' | 'fraction'>) =>
    opts.onProgress?.({ ...e, totalSections: sections, totalSteps: params.steps, fraction: Math.min(1, stepsDone / stepsTotal) });
  if (opts.signal?.aborted) throw new GenerationCancelledError(0);

  // 1. input image (or a black one and a noise start latent for text-to-video)
  let tEnc = performance.now();
  progress({ stage: 'encode', section: 0, step: 0, message: 'encoding inputs' });
  const image = params.image ? await c.loadImage(params.image, params.resolution) : null;
  const [height, width] = image ? [image.height, image.width] : c.bucket(params.resolution, params.resolution, params.resolution);
  if (height % 16 || width % 16) {
    throw new GeneratorError(`the bucket ${width}x${height} is not a multiple of 16; choose another --resolution`, 'BAD_PARAMS', { width, height });
  }
  const generator = c.noise(params.seed);
  const disposables: T.Tensor[] = [];
  const own = <X extends T.Tensor>(t: X) => (disposables.push(t), t);
  try {
    let tStage = stageStart();
    // Prompts: a plain prompt conditions every section; timestamped ones are blended per section (prompt-blender),
    // each unique prompt encoded once.
    const schedule = parsePromptSchedule(params.prompt, { videoSeconds: params.seconds });
    let truncated = false;
    const encoded: TextConds[] = [];
    const positives = await sectionConditioning(
      schedule,
      { mode: params.mode, totalSections: sections, latentWindowSize: params.window, fps: 30, blendSections: params.promptBlendSections, startIsImage: !!params.image },
      async (prompt) => {
        const e = await c.encodePrompt(prompt);
        truncated ||= e.truncated;
        encoded.push(e);
        return e;
      },
    );
    const sectionsConds: TextConds[] = positives.map((p) => ({ llamaVec: p.llamaVec, llamaMask: p.llamaMask, clipPooler: p.clipPooler }));
    for (const e of encoded) own(e.llamaVec), own(e.llamaMask), own(e.clipPooler);
    for (const p of sectionsConds) own(p.llamaVec), own(p.llamaMask), own(p.clipPooler);
    let negativeFor: (pos: TextConds) => TextConds;
    if (params.cfg === 1) {
      // FramePack: no negative pass at cfg 1 (the sampler never calls it); zeros with the positive mask
      negativeFor = (pos) => ({ llamaVec: own(T.zerosLike(pos.llamaVec)), llamaMask: pos.llamaMask, clipPooler: own(T.zerosLike(pos.clipPooler)) });
    } else {
      const n = await c.encodePrompt(params.negativePrompt);
      const neg = { llamaVec: own(n.llamaVec), llamaMask: own(n.llamaMask), clipPooler: own(n.clipPooler) };
      negativeFor = () => neg;
    }
    c.release?.('text');
    stageEnd('textEncode', tStage);
    tStage = stageStart();
    const imageEmbeddings = own(await c.encodeImage(image ?? black(height, width)));
    c.release?.('image');
    stageEnd('imageEncode', tStage);
    tStage = stageStart();
    let startLatent: T.Tensor;
    if (image) {
      const px = imageToTensor(image);
      startLatent = own(await c.vaeEncode(px));
      px.dispose();
    } else {
      startLatent = own(generator.randn([1, c.latentChannels, 1, height / 8, width / 8]));
    }
    let endLatent: T.Tensor | undefined;
    if (params.endImage) {
      const end = await c.loadImage(params.endImage, params.resolution);
      if (end.width !== width || end.height !== height) {
        throw new GeneratorError(`the end image fits the bucket ${end.width}x${end.height}, the start image ${width}x${height}: use images of the same aspect ratio`, 'BAD_IMAGE');
      }
      const px = imageToTensor(end);
      endLatent = own(await c.vaeEncode(px));
      px.dispose();
    }
    stageEnd('vaeEncode', tStage);
    mark('encode', tEnc);

    // 2. the section loop
    let stepSkipping: JobResult['stepSkipping'];
    const onStats = (st: { requests: number; hits: number; text: string }) => {
      const requests = (stepSkipping?.requests ?? 0) + st.requests;
      const hits = (stepSkipping?.hits ?? 0) + st.hits;
      const name = params.cache === 'teacache' ? 'TeaCache' : 'MagCache';
      stepSkipping = { requests, hits, text: `${name} skipped ${hits}/${requests} model calls (${((100 * hits) / Math.max(1, requests)).toFixed(1)}%)` };
    };
    const { latents, pixels } = await runSectionLoop(
      { mode: params.mode, startLatent, windowSize: params.window, sections, endLatent, endStrength: params.endStrength, startIsImage: !!image },
      {
        signal: opts.signal,
        sample: async (section) => {
          const t = stageStart();
          try {
            return await c.sample({
              section, positive: sectionsConds[section.index], negative: negativeFor(sectionsConds[section.index]), imageEmbeddings, width, height, params, noise: generator, signal: opts.signal, onStats,
              onStep: (step, total, denoised) => {
                stepsDone = section.index * params.steps + step + 1;
                const preview = opts.previews ? c.preview(denoised) : undefined;
                progress({ stage: 'sample', section: section.index, step: step + 1, preview });
              },
            });
          } finally {
            stageEnd('sample', t);
          }
        },
        decode: async (l) => {
          const t = stageStart();
          progress({ stage: 'decode', section: Math.min(sections - 1, Math.round(stepsDone / params.steps) - 1), step: params.steps });
          try {
            return await c.vaeDecode(l);
          } finally {
            stageEnd('decode', t);
          }
        },
        onSection: async (r) => {
          const t = performance.now();
          progress({ stage: 'write', section: r.index, step: params.steps, message: `section ${r.index + 1}/${r.total}: ${r.pixels.shape[2]} frames` });
          await opts.onSection?.(r.pixels, r.index, r.total);
          mark('write', t);
        },
      },
    );
    try {
      await opts.onLatents?.(latents);
    } finally {
      latents.dispose();
    }
    const frames = pixels.shape[2];
    const expected = image ? expectedPixelFrames(params.mode, sections, params.window) : frames;
    if (frames !== expected) throw new Error(`internal: ${frames} frames decoded, ${expected} expected`);
    timings.total = (performance.now() - t0) / 1000;
    progress({ stage: 'done', section: sections - 1, step: params.steps });
    return { pixels, width, height, frames, sections, promptTruncated: truncated, stepSkipping, timings, ...(memory ? { memory } : {}) };
  } catch (e) {
    if (e instanceof GenerationCancelledError) throw new GeneratorError(e.message, 'CANCELLED', { sectionsDone: e.sectionsDone });
    if (e instanceof T.OutOfMemoryError) {
      throw new GeneratorError(
        `out of memory: ${e.message}. Lower --resolution, --seconds or --window, use --vram-budget (streams the weights), or free the GPU`,
        'OUT_OF_MEMORY',
      );
    }
    if (e instanceof PromptBlenderError) throw new GeneratorError(`prompt: ${e.message}`, 'BAD_PARAMS', { param: 'prompt' });
    throw e;
  } finally {
    // a job that failed while encoding frees its per-job encoders too
    c.release?.('text');
    c.release?.('image');
    for (const t of new Set(disposables)) t.dispose();
  }
}
