/**
 * Binds the pipeline's `Components` to the real packages: model folders resolved from the Hugging Face cache (or the
 * tiny family), loaded with each package's own loader, the sampler driving the DiT with the step-skip hooks.
 */
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { checkComponents, framepackComponents } from '@framepack/hub';
import { HunyuanVideoTransformer3DModelPacked, readConfigFile } from '@framepack/dit-model';
import { LoraError, LoraStack, loadLora, shapesOf, withLoras } from '@framepack/lora';
import { openCheckpoint } from '@framepack/safetensors';
import { HunyuanVideoVae, previewImage } from '@framepack/vae-tiling';
import {
  ClipTextEncoder,
  ClipTokenizer,
  HUNYUAN_CROP_START,
  HUNYUAN_PROMPT_TEMPLATE,
  LlamaTextEncoder,
  LlamaTokenizer,
  SiglipVisionEncoder,
  encodePromptConds,
} from '@framepack/encoders';
import { TorchGenerator, randn, sampleHunyuan, SamplingCancelledError, type ModelCallContext } from '@framepack/k-diffusion';
import { MagCache, TeaCache, createBranchHooks, formatSkipStats, modelFamilyFor, type BranchHooks } from '@framepack/magcache';
import { BUCKET_OPTIONS, ImageReadError, findNearestBucket, prepareInputImage } from '@framepack/video-io';
import { GeneratorError, ModelsMissingError } from './errors.js';
import { GenerationCancelledError, sectionContextOn, type LoopMode } from './section-loop.js';
import type { Components, SampleRequest, TextConds } from './pipeline.js';
import { ensureTinyModels } from './tiny/family.js';
import { planMemory, STREAM_WEIGHTS, type MemoryPlan, type StreamWeights } from './memory-plan.js';
import { planModels, readModelShapes } from './model-sizes.js';
import { DEFAULTS } from './params.js';

export interface LoadOptions {
  /** The embedded tiny family instead of the real checkpoints. */
  tiny?: boolean;
  /** Which transformer (real models): the original I2V or the F1 checkpoint. */
  mode?: LoopMode;
  device?: T.DeviceType;
  /** Compute dtype of every model (default: f32 on the CPU; on CUDA bf16 for the DiT and f16 for the encoders and the VAE, as FramePack runs them). */
  dtype?: T.DType;
  /**
   * Device-memory budget in GiB (CUDA): the memory planner decides from it what stays resident, what streams,
   * which encoders are loaded per job and the VAE tiles (see memory-plan.ts), and the allocator is capped.
   */
  vramBudgetGiB?: number;
  /**
   * How the DiT's streamed blocks are stored when the plan streams them (`--stream-weights`): 'bf16' (default, the
   * compute dtype), 'int8' (weight-only, per-row scales) or 'fp8' (E4M3, per-row scales; CUDA needs sm_89+). 8-bit
   * halves the bytes copied per forward and the pinned host memory, at a quality cost (tooling/quant-quality.ts).
   * Needs `vramBudgetGiB` (or a `memoryPlan`): resident weights are never quantized.
   */
  streamWeights?: StreamWeights;
  /** The job shape the memory plan is made for (default: the default resolution and window). */
  planFor?: { resolution?: number; window?: number };
  /**
   * A plan made by the caller (`planMemory`), used as is instead of planning from `vramBudgetGiB`; on the CPU it
   * runs the same streaming / per-job loading code path without an allocator cap (tests).
   */
  memoryPlan?: MemoryPlan;
  /** LoRAs merged into the transformer as its weights are read (several, each with its own weight). */
  loras?: { path: string; weight: number }[];
  /** Folder per component, overriding the resolution (e.g. local copies). */
  paths?: Partial<Record<ComponentName, string>>;
}

type ComponentName = 'transformer' | 'vae' | 'text_encoder' | 'text_encoder_2' | 'tokenizer' | 'tokenizer_2' | 'image_encoder' | 'feature_extractor';

/** Folders of every component: the tiny family's cache folder, or the HF cache (missing files -> one error). */
export function resolveModelPaths(opts: LoadOptions): Record<ComponentName, string> {
  if (opts.tiny) {
    const root = ensureTinyModels();
    const names: ComponentName[] = ['transformer', 'vae', 'text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2', 'image_encoder', 'feature_extractor'];
    return Object.fromEntries(names.map((n) => [n, opts.paths?.[n] ?? join(root, n)])) as Record<ComponentName, string>;
  }
  const status = checkComponents(framepackComponents(opts.mode ?? 'original'));
  const missing = status
    .filter((s) => s.missing.length && !opts.paths?.[s.component.name as ComponentName])
    .map((s) => ({ component: s.component.name, repo: s.component.repo, files: s.missing }));
  if (missing.length) throw new ModelsMissingError(missing);
  return Object.fromEntries(status.map((s) => [s.component.name, opts.paths?.[s.component.name as ComponentName] ?? s.path!])) as Record<ComponentName, string>;
}

/** The DiT, with LoRAs merged as each weight is read from the checkpoint (nothing unmerged is kept in memory). */
function loadTransformer(dir: string, load: { device: T.DeviceType; dtype: T.DType; streamBlocks?: { slots: number; weights8bit?: T.Weight8Format } }, loras: { path: string; weight: number }[]) {
  if (!loras.length) return { dit: HunyuanVideoTransformer3DModelPacked.load(dir, load), loraReport: [] };
  const ckpt = openCheckpoint(dir);
  try {
    const stack = new LoraStack(
      shapesOf(ckpt),
      loras.map((l) => ({ lora: loadLora(l.path), weight: l.weight })),
    );
    const report = stack.report.loras.map((r, i) => ({ path: loras[i].path, weight: loras[i].weight, format: r.format, modules: r.applied.length, unmatched: r.unmatched.length }));
    const dit = HunyuanVideoTransformer3DModelPacked.fromWeights(readConfigFile(join(dir, 'config.json')), withLoras(ckpt, stack), load);
    return { dit, loraReport: report };
  } catch (e) {
    if (e instanceof LoraError) throw new GeneratorError(`LoRA: ${e.message}`, 'BAD_PARAMS', { param: 'lora' });
    throw e;
  } finally {
    ckpt.close();
  }
}

/** Tokens of the template before the prompt: what encode_prompt_conds crops (95 for the real LLaMA-3 tokenizer). */
function templateCropStart(tokenizer: LlamaTokenizer): number {
  const prefix = HUNYUAN_PROMPT_TEMPLATE.slice(0, HUNYUAN_PROMPT_TEMPLATE.indexOf('{}'));
  return tokenizer.encode(prefix, { padding: 'none' }).ids.length;
}

/** The bound components, their memory plan (null without a budget) and which encoders are loaded now. */
export type LoadedComponents = Components & { dispose(): void; memoryPlan: MemoryPlan | null; loaded(): { llama: boolean; clip: boolean; siglip: boolean } };

export async function loadComponents(opts: LoadOptions = {}): Promise<LoadedComponents> {
  const device = opts.device ?? 'cpu';
  if (device !== 'cpu' && !T.isDeviceAvailable(device)) {
    throw new GeneratorError(`device ${device} is not available (no CUDA build of the tensor-core addon, or no GPU); use --device cpu`, 'BAD_PARAMS');
  }
  if (opts.vramBudgetGiB !== undefined && device === 'cpu') throw new GeneratorError('--vram-budget applies to --device cuda', 'BAD_PARAMS');
  checkStreamWeights(opts, device);
  const dtype = opts.dtype ?? (device === 'cpu' ? 'f32' : 'bf16');
  const paths = resolveModelPaths(opts);
  const load = { device, dtype };
  // FramePack runs the text/image encoders and the VAE in fp16 and the transformer in bf16.
  const encLoad = { device, dtype: opts.dtype ?? (device === 'cpu' ? 'f32' : 'f16') } as const;
  const plan = opts.memoryPlan ?? (opts.vramBudgetGiB === undefined ? null : makePlan(opts, opts.vramBudgetGiB, dtype));
  if (plan && device === 'cuda') T.setVramBudget(plan.allocatorBudgetBytes);
  const w8 = plan?.dit.weights8bit ?? null;
  const ditStream = plan?.dit.mode === 'streamed' ? { streamBlocks: { slots: plan.dit.slots, residentBlocks: plan.dit.residentBlocks, ...(w8 ? { weights8bit: w8 } : {}) } } : {};
  const { dit, loraReport } = loadTransformer(paths.transformer, { ...load, ...ditStream }, opts.loras ?? []);
  const vae = HunyuanVideoVae.load(paths.vae, encLoad);
  if (plan?.vae.tiling.spatial) vae.enableTiling(plan.vae.tiling);
  // Encoders: kept ones load now; per-job ones load when a job first needs them and are freed after use.
  const streamOf = (e: MemoryPlan['llama'] | undefined) => (e?.mode === 'streamed' ? { streamLayers: { slots: e.slots, hostCopy: e.hostCopy } } : {});
  const llama = new Lazy(() => LlamaTextEncoder.load(paths.text_encoder, { ...encLoad, hiddenStateIndex: -3, ...streamOf(plan?.llama) }), plan?.llama.lifetime ?? 'kept');
  const clip = new Lazy(() => ClipTextEncoder.load(paths.text_encoder_2, encLoad), plan?.clip.lifetime ?? 'kept');
  const siglip = new Lazy(() => SiglipVisionEncoder.load(paths.image_encoder, { ...encLoad, preprocessDir: paths.feature_extractor, ...streamOf(plan?.siglip) }), plan?.siglip.lifetime ?? 'kept');
  const llamaTokenizer = LlamaTokenizer.fromDir(paths.tokenizer);
  const clipTokenizer = ClipTokenizer.fromDir(paths.tokenizer_2);
  const cropStart = opts.tiny ? templateCropStart(llamaTokenizer) : HUNYUAN_CROP_START;
  const ditDType = dtype === 'f32' ? 'f32' : dtype === 'f16' ? 'f16' : 'bf16';

  const components: LoadedComponents = {
    latentChannels: 16,
    describe: () => ({
      family: opts.tiny ? 'framepack-tiny (NOT a real model)' : 'FramePack HunyuanVideo', mode: opts.mode ?? 'original', device, dtype, paths, loras: loraReport,
      ...(plan ? { memoryPlan: summarizePlan(plan) } : {}),
    }),
    memoryPlan: plan,
    loaded: () => ({ llama: llama.loaded, clip: clip.loaded, siglip: siglip.loaded }),

    async encodePrompt(prompt) {
      const withTemplate = llamaTokenizer.encode(HUNYUAN_PROMPT_TEMPLATE.replace('{}', prompt), { padding: 'none' }).ids.length;
      const tokens = withTemplate - cropStart;
      const conds = encodePromptConds(prompt, { llama: llama.get(), clip: clip.get(), llamaTokenizer, clipTokenizer, cropStart });
      return { ...conds, tokens: Math.min(tokens, 256), truncated: tokens > 256 };
    },
    async encodeImage(image) {
      return siglip.get().encodeImage(image);
    },
    release(stage) {
      if (stage === 'text') {
        llama.release();
        clip.release();
      } else siglip.release();
    },
    async vaeEncode(pixels) {
      const e = vae.encode(pixels);
      e.mean.dispose();
      e.logvar.dispose();
      return e.latents;
    },
    async vaeDecode(latents) {
      return vae.decode(latents);
    },
    preview: (latents) => previewImage(latents),
    async loadImage(path, resolution) {
      try {
        const p = prepareInputImage(path, { resolution });
        p.pixels.dispose();
        return p.image;
      } catch (e) {
        if (e instanceof ImageReadError) throw new GeneratorError(`cannot use the image ${path}: ${e.message}`, 'BAD_IMAGE', { path });
        throw e;
      }
    },
    bucket: (h, w, r) => findNearestBucket(h, w, r),
    noise(seed) {
      const generator = new TorchGenerator(seed);
      return { randn: (shape) => randn(shape, generator), generator } as JobNoise;
    },
    async sample(req: SampleRequest) {
      const { section: s, params: p } = req;
      if (plan && (req.width * req.height > plan.job.width * plan.job.height || p.window > plan.job.window)) {
        throw new GeneratorError(
          `this job (${req.width}x${req.height}, window ${p.window}) is larger than the ${plan.job.width}x${plan.job.height}, window ${plan.job.window} the memory plan was made for; ` +
            `load the generator with planFor { resolution, window } covering it (CLI: pass --resolution/--window)`,
          'BAD_PARAMS',
          { planned: plan.job },
        );
      }
      const hooks = makeHooks(p.cache, p, req.width, req.height, opts.mode ?? p.mode);
      // The loop keeps its history on the CPU in f32; the DiT wants its inputs on its own device.
      const onDevice = (t: T.Tensor) => (t.device === device ? t : T.toDevice(t, device));
      const moved: T.Tensor[] = [];
      const dev = <X extends T.Tensor>(t: X) => {
        const m = onDevice(t);
        if (m !== t) moved.push(m);
        return m;
      };
      const sectionCtx = sectionContextOn(s, device);
      const ctxIn = { ...sectionCtx, imageEmbeddings: dev(req.imageEmbeddings) };
      const conds = new Map<TextConds, TextConds>();
      const condOnDevice = (c: TextConds) => {
        let m = conds.get(c);
        if (!m) conds.set(c, (m = { llamaVec: dev(c.llamaVec), llamaMask: dev(c.llamaMask), clipPooler: dev(c.clipPooler) }));
        return m;
      };
      try {
        type Cond = TextConds;
        const model = (x: T.Tensor, timestep: T.Tensor, cond: Cond, ctx: ModelCallContext) =>
          dit.forward(
            {
              hiddenStates: x, timestep, guidance: ctx.guidance!,
              encoderHiddenStates: condOnDevice(cond).llamaVec, encoderAttentionMask: condOnDevice(cond).llamaMask, pooledProjections: condOnDevice(cond).clipPooler,
              ...ctxIn,
            },
            { stepSkip: hooks?.forBranch(ctx.branch), step: ctx.step, totalSteps: ctx.totalSteps },
          );
        return await sampleHunyuan<Cond>({
          model, positive: req.positive, negative: req.negative,
          width: req.width, height: req.height, frames: s.frames, steps: p.steps, cfg: p.cfg, gs: p.gs, rs: p.rs,
          generator: sharedGenerator(req), dtype: ditDType, device, signal: req.signal,
          callback: (info) => req.onStep(info.step, info.totalSteps, info.denoised),
        });
      } catch (e) {
        if (e instanceof SamplingCancelledError) throw new GenerationCancelledError(s.index);
        throw e;
      } finally {
        T.disposeAll([moved, sectionCtx]);
        if (hooks) {
          const st = hooks.stats();
          req.onStats?.({ requests: st.requests, hits: st.hits, text: formatSkipStats(p.cache, st) });
          hooks.dispose();
        }
      }
    },
    dispose() {
      dit.dispose?.();
      vae.dispose();
      llama.dispose();
      clip.dispose();
      siglip.dispose();
    },
  };
  return components;
}

/** A model loaded on first use; a per-job one is freed by `release` (and loaded again by the next job). */
class Lazy<M extends { dispose(): void }> {
  #model: M | null = null;
  constructor(
    private readonly loadFn: () => M,
    readonly lifetime: 'kept' | 'per-job',
  ) {
    if (lifetime === 'kept') this.#model = loadFn();
  }
  get(): M {
    return (this.#model ??= this.loadFn());
  }
  get loaded(): boolean {
    return this.#model !== null;
  }
  release(): void {
    if (this.lifetime === 'per-job') this.dispose();
  }
  dispose(): void {
    this.#model?.dispose();
    this.#model = null;
  }
}

/** The largest bucket (most pixels) of a resolution's row (the row find_nearest_bucket uses): what a load-time plan must cover. */
export function largestBucket(resolution: number): [number, number] {
  const asked = Math.trunc(resolution);
  let key = -Infinity;
  // keys ascend, so a strict < keeps the smaller key on a tie (as findNearestBucket)
  for (const k of BUCKET_OPTIONS.keys()) if (Math.abs(k - asked) < Math.abs(key - asked)) key = k;
  const [h, w] = BUCKET_OPTIONS.get(key)!.reduce((a, b) => (b[0] * b[1] > a[0] * a[1] ? b : a));
  return [h, w];
}

/**
 * The memory plan for the models `opts` resolves (their config.json + safetensors headers; nothing is loaded),
 * a budget, a compute dtype and a job shape. It may not fit (`plan.fits`); loading refuses such a plan.
 */
/**
 * `streamWeights` must be bf16/int8/fp8; 8-bit needs a budget (or a plan that streams, whose own choice must
 * agree); fp8 on CUDA needs compute capability 8.9+ (Ada, Hopper and newer), the GPUs with FP8 support.
 */
function checkStreamWeights(opts: LoadOptions, device: T.DeviceType): void {
  const f = opts.streamWeights;
  if (f === undefined) return;
  if (!STREAM_WEIGHTS.includes(f)) throw new GeneratorError(`--stream-weights must be one of ${STREAM_WEIGHTS.join(', ')}, got ${String(f)}`, 'BAD_PARAMS', { param: 'streamWeights' });
  if (f === 'bf16') return;
  if (opts.memoryPlan) {
    if ((opts.memoryPlan.dit.weights8bit ?? 'bf16') !== f && opts.memoryPlan.dit.mode === 'streamed')
      throw new GeneratorError(`--stream-weights ${f} differs from the given memory plan's DiT storage (${opts.memoryPlan.dit.weights8bit ?? 'bf16'}): plan with streamWeights '${f}'`, 'BAD_PARAMS', { param: 'streamWeights' });
  } else if (opts.vramBudgetGiB === undefined) {
    throw new GeneratorError(`--stream-weights ${f} needs --vram-budget: only the DiT blocks the memory plan streams are stored in 8 bits`, 'BAD_PARAMS', { param: 'streamWeights' });
  }
  if (f === 'fp8' && device === 'cuda') {
    const { major, minor, name } = T.cudaDeviceInfo();
    if (major * 10 + minor < 89)
      throw new GeneratorError(`--stream-weights fp8 needs a GPU with FP8 support (compute capability 8.9+: Ada, Hopper or newer); ${name} is ${major}.${minor}: use --stream-weights int8`, 'BAD_PARAMS', { param: 'streamWeights' });
  }
}

export function memoryPlanFor(opts: Pick<LoadOptions, 'tiny' | 'mode' | 'paths' | 'planFor' | 'streamWeights'> & { vramBudgetGiB: number; dtype?: T.DType }): MemoryPlan {
  const budgetGiB = opts.vramBudgetGiB;
  if (!(budgetGiB > 0)) throw new GeneratorError(`--vram-budget must be a positive number of GiB, got ${budgetGiB}`, 'BAD_PARAMS', { param: 'vramBudget' });
  const dtype = opts.dtype ?? 'bf16';
  const paths = resolveModelPaths(opts);
  const [height, width] = largestBucket(opts.planFor?.resolution ?? DEFAULTS.resolution);
  return planMemory({
    budgetBytes: budgetGiB * 2 ** 30,
    bytesPerElement: T.BYTES_PER_ELEMENT[dtype],
    models: planModels(readModelShapes(paths), T.BYTES_PER_ELEMENT[dtype]),
    job: { height, width, window: opts.planFor?.window ?? DEFAULTS.window },
    streamWeights: opts.streamWeights,
  });
}

function makePlan(opts: LoadOptions, budgetGiB: number, dtype: T.DType): MemoryPlan {
  const plan = memoryPlanFor({ ...opts, vramBudgetGiB: budgetGiB, dtype });
  if (!plan.fits) throw new GeneratorError(`the models do not fit a ${budgetGiB} GiB budget: ${plan.problem}`, 'OUT_OF_MEMORY', { plan: summarizePlan(plan) });
  return plan;
}

/** The plan in a JSON-friendly shape (GiB, decisions, reasons) for logs, the CLI and the sidecar. */
export function summarizePlan(p: MemoryPlan): Record<string, unknown> {
  const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));
  const enc = (e: MemoryPlan['llama']) => ({ mode: e.mode, ...(e.mode === 'streamed' ? { slots: e.slots, hostCopy: e.hostCopy } : {}), lifetime: e.lifetime, deviceGiB: gib(e.deviceBytes) });
  return {
    budgetGiB: gib(p.budgetBytes),
    allocatorBudgetGiB: gib(p.allocatorBudgetBytes),
    dit: {
      mode: p.dit.mode,
      ...(p.dit.mode === 'streamed'
        ? { slots: p.dit.slots, residentBlocks: p.dit.residentBlocks, streamWeights: p.dit.weights8bit ?? 'bf16', streamedGiBPerForward: gib(p.dit.streamedBytesPerForward), ...(p.dit.weights8bit ? { scratchGiB: gib(p.dit.scratchBytes) } : {}) }
        : {}),
      deviceGiB: gib(p.dit.deviceBytes),
    },
    llama: enc(p.llama),
    clip: enc(p.clip),
    siglip: enc(p.siglip),
    vae: { tiles: p.vae.tileLabel, deviceGiB: gib(p.vae.deviceBytes) },
    phasesGiB: Object.fromEntries(p.phases.map((x) => [x.phase, gib(x.bytes)])),
    hostPhasesGiB: Object.fromEntries(p.hostPhases.map((x) => [x.phase, gib(x.bytes)])),
    order: p.order,
    reasons: p.reasons,
  };
}


/** The job's one torch-compatible generator, shared by the start latent (text-to-video) and every section's noise. */
type JobNoise = { randn(shape: number[]): T.Tensor; generator: TorchGenerator };
function sharedGenerator(req: SampleRequest): TorchGenerator {
  return (req.noise as JobNoise).generator;
}

type Hook = TeaCache | MagCache;
// The tiny family has no MagCache calibration of its own: it uses the real model's table (the point is the code path).
function makeHooks(cache: string, p: SampleRequest['params'], width: number, height: number, mode: LoopMode): BranchHooks<Hook> | null {
  if (cache === 'teacache') return createBranchHooks<Hook>(() => new TeaCache({ relL1Threshold: p.teacacheThreshold }));
  if (cache === 'magcache') {
    return createBranchHooks<Hook>(
      () =>
        new MagCache({
          width, height, modelFamily: modelFamilyFor(mode === 'f1' ? 'F1' : 'Original'),
          threshold: p.magcacheThreshold, maxConsecutiveSkips: p.magcacheMaxSkips, retentionRatio: p.magcacheRetention,
        }),
    );
  }
  return null;
}
