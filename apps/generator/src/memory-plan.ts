/**
 * The low-VRAM memory planner: from a device-memory budget, the models' sizes (read from their checkpoints'
 * headers and config.json) and the job's shapes, decide per component whether it stays resident or streams its
 * layers through device slots, which components stay loaded between jobs and which are loaded per job and freed
 * after use, and the VAE tile size. A pure function: `planMemory(input)`; `reasons` says why, in words.
 *
 * The job runs in phases, one after the other: text encoding (LLaMA + CLIP, once per prompt), image encoding
 * (SigLIP), VAE encoding, sampling (the DiT, every step of every section) and decoding (the VAE after every
 * section). A phase's peak is what stays loaded (the DiT's device part, the VAE, kept encoders) plus what the
 * phase itself loads and computes. Every phase must fit the usable budget.
 *
 * Activation sizes are estimates (see the constants); the device benchmarks of issue 8 are what calibrates them.
 */
import { DEFAULT_TILING, type TilingOptions } from '@framepack/vae-tiling';

const GiB = 2 ** 30;

/** Weight bytes of one model in the compute dtype, as the loader would place them. */
export interface LayeredWeights {
  /** Bytes that stay on the device whenever the model does (embeddings, norms, heads, the DiT's refiner). */
  fixedBytes: number;
  /** Of `fixedBytes`, what stays on the host when the model streams (LLaMA's embedding table: only looked-up rows move). */
  hostableBytes: number;
  /** The streamable layers/blocks that run, in execution order. */
  unitBytes: number[];
}

/** A transformer encoder's shape, for its activation estimate. */
export interface EncoderShape {
  weights: LayeredWeights;
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  /** Tokens of the largest pass (LLaMA: template + 256 prompt tokens; CLIP: 77; SigLIP: its patch count). */
  tokens: number;
}

/**
 * The DiT blocks stored in 8 bits for streaming (int8 and fp8 have the same layout: a byte per value of each
 * matrix, an f32 scale per row, biases/norms in the compute dtype), per block in execution order.
 */
export interface Weights8Bit {
  /** Bytes one copy of each block moves (and its pinned host copy holds). */
  unitBytes: number[];
  /** Device bytes each block's matrices take once dequantized into the scratch (compute dtype). */
  scratchBytes: number[];
}

/** How streamed DiT blocks are stored: the compute dtype ('bf16'), or 8-bit int8 / fp8 (e4m3) with per-row scales. */
export type StreamWeights = 'bf16' | 'int8' | 'fp8';
export const STREAM_WEIGHTS: readonly StreamWeights[] = ['bf16', 'int8', 'fp8'];

export interface PlanModels {
  dit: { weights: LayeredWeights; innerDim: number; patchSize: number; patchSizeT: number; weights8bit?: Weights8Bit };
  llama: EncoderShape;
  clip: EncoderShape;
  siglip: EncoderShape;
  vae: { weightBytes: number; blockOutChannels: number[]; spatialRatio: number; temporalRatio: number; latentChannels: number };
}

export interface PlanJob {
  /** Frame size in pixels (plan with the largest bucket the job may use). */
  height: number;
  width: number;
  /** Latent frames per section. */
  window: number;
  /** Text tokens the DiT sees (FramePack pads the LLaMA features to 512; default 512). */
  textTokens?: number;
}

export interface PlanInput {
  /** The device-memory budget (`--vram-budget`), bytes. */
  budgetBytes: number;
  /** Bytes per element of the compute dtype (2 for bf16/f16, 4 for f32). */
  bytesPerElement: number;
  models: PlanModels;
  job: PlanJob;
  /**
   * Host memory the streamed weights may hold (default 32 GiB, issue 8's target for the whole pipeline): a plan over
   * it says so in its reasons (the DiT's pinned blocks are the only large host copy; nothing smaller is possible).
   */
  hostBudgetBytes?: number;
  /**
   * Device memory outside the allocator's reach: the CUDA context, cuBLASLt's workspace, the driver (default
   * 0.75 GiB). The allocator is capped at budget - reserve, so the driver sees the whole process under budget.
   */
  reserveBytes?: number;
  /**
   * How streamed DiT blocks are stored (`--stream-weights`, default 'bf16' = the compute dtype). 'int8' / 'fp8'
   * halve the bytes copied per forward and the pinned host copy; the device holds the 8-bit slots plus one
   * dequantize scratch (the largest block's matrices in the compute dtype). Resident blocks stay in the compute dtype.
   */
  streamWeights?: StreamWeights;
}

export type Lifetime = 'kept' | 'per-job';

export interface EncoderPlan {
  mode: 'resident' | 'streamed';
  /** Device slots when streamed. */
  slots: number;
  /**
   * When streamed: 'packed' keeps every layer in (pinned) host memory while the encoder is loaded (a kept encoder);
   * 'source' reads the layers from the checkpoint on every pass straight into the slots' pinned staging buffers
   * (host memory: the slots only). A per-job encoder runs one pass per prompt, so it always reads from the source:
   * pinning a 13 GiB copy for one pass is slower (H100, LLaMA-3-8B: text encode 6.4 s from the source, 10.8 s packed).
   */
  hostCopy: 'packed' | 'source';
  /** kept: loaded once with the generator; per-job: loaded when the job needs it, freed right after. */
  lifetime: Lifetime;
  /** Device bytes while loaded. */
  deviceBytes: number;
}

export interface DitPlan {
  mode: 'resident' | 'streamed';
  slots: number;
  /** Blocks kept on the device when streaming (the first ones); the rest stream every forward. */
  residentBlocks: number;
  deviceBytes: number;
  /** Host -> device bytes per forward (0 when resident). */
  streamedBytesPerForward: number;
  /** 8-bit storage of the streamed blocks (null: the compute dtype, or resident). */
  weights8bit: 'int8' | 'fp8' | null;
  /** Of `deviceBytes`, the dequantize scratch (8-bit streaming only). */
  scratchBytes: number;
}

export interface PhasePeak {
  phase: 'text-encode' | 'image-encode' | 'vae-encode' | 'sample' | 'decode';
  bytes: number;
}

export interface MemoryPlan {
  /** The job shape planned for (larger jobs may not fit). */
  job: PlanJob;
  budgetBytes: number;
  reserveBytes: number;
  /** What the allocator is capped at (budget - reserve). */
  allocatorBudgetBytes: number;
  /** What the plan fills: the allocator cap less a margin for fragmentation. */
  usableBytes: number;
  /** False when even the leanest plan does not fit (then `problem` says how much is missing). */
  fits: boolean;
  /** Why the plan does not fit and what to do (only when `fits` is false). */
  problem?: string;
  dit: DitPlan;
  llama: EncoderPlan;
  clip: EncoderPlan;
  siglip: EncoderPlan;
  vae: { deviceBytes: number; tiling: TilingOptions; tileLabel: string };
  /** Estimated peak of each phase. */
  phases: PhasePeak[];
  /**
   * Host memory the plan holds per phase (the streamed weights' host copies, pinned on CUDA; resident models are
   * read one tensor at a time, so loading them holds no second copy). Reported, not planned.
   */
  hostPhases: PhasePeak[];
  /** Load/run/free order, at start-up and per job. */
  order: string[];
  reasons: string[];
}

// ---- estimates -------------------------------------------------------------------------------------------------

/**
 * DiT activations at the forward's peak, in elements per token per hidden unit. Anchored on the measured PyTorch
 * forwards at 640x640 / 320x320 (DESIGN.md: 26.1 / 24.6 GiB peak for 23.97 GiB of bf16 weights at ~19200 /
 * ~5400 tokens: 19.4 / 20.4 x 3072 elements per token). Our own op graph keeps 14.5 alive (live-tensor peak of a
 * forward on the CPU backend, test/memory-estimates.test.ts), so this leaves room for attention/GEMM workspaces.
 */
export const DIT_ACT_PER_TOKEN_PER_DIM = 20;
/**
 * VAE decode: live elements per output pixel-frame of a tile, per channel of the full-resolution stage
 * (block_out_channels[1] = 256 channels run at full resolution in the last upsampler: input, norm, activation
 * and the causally padded copy of a 3-D convolution coexist). Measured live-tensor peak of our decoder: 3.8.
 */
export const VAE_DECODE_LIVE_COPIES = 4;
/** VAE encode: live elements per input pixel of a (single-frame) tile, per block_out_channels[0] channel (measured: 6.4; the causal time padding triples a 1-frame input). */
export const VAE_ENCODE_LIVE_COPIES = 8;
/** The convolution's column buffer is capped at 64 Mi elements by the CUDA backend (conv3d.cu). */
export const CONV_WORKSPACE_ELEMENTS = 64 * 2 ** 20;
/** Fragmentation margin kept free in the allocator. */
export const FRAGMENTATION_MARGIN = 0.05;
/** Memory left free when choosing how many streamed DiT blocks stay resident (see planMemory). */
export const STREAM_HEADROOM_BYTES = 1 * 2 ** 30;
/** Spatial tile sizes tried (pixels; stride = 3/4 of the tile, the reference's 256/192 ratio), largest first. */
export const TILE_SIZES = [512, 384, 256, 192, 128] as const;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);
export const totalBytes = (w: LayeredWeights) => w.fixedBytes + sum(w.unitBytes);
export const fmtGiB = (b: number) => `${(b / GiB).toFixed(2)} GiB`;

/** Tokens of one DiT forward: the noisy window, FramePack's clean latents (2 x 1x, 2 -> 1 x 2x, 16 -> 4 x 4x) and the context. */
export function ditTokens(m: PlanModels, job: PlanJob): number {
  const { patchSize: p, patchSizeT: pt } = m.dit;
  const h = job.height / m.vae.spatialRatio, w = job.width / m.vae.spatialRatio;
  const grid = (f: number, s: number) => Math.ceil(f / pt) * Math.ceil(h / (p * s)) * Math.ceil(w / (p * s));
  const image = grid(job.window, 1) + grid(2, 1) + grid(1, 2) + grid(4, 4);
  return image + m.siglip.tokens + (job.textTokens ?? 512);
}

export function ditActivationBytes(m: PlanModels, job: PlanJob, bpe: number): number {
  return ditTokens(m, job) * DIT_ACT_PER_TOKEN_PER_DIM * m.dit.innerDim * bpe;
}

/** A transformer encoder pass: hidden, q/k/v, attention out and the MLP's intermediates per token, plus f32 scores. */
export function encoderActivationBytes(e: EncoderShape, bpe: number): number {
  return e.tokens * (6 * e.hiddenSize + 4 * e.intermediateSize) * bpe + e.numAttentionHeads * e.tokens * e.tokens * 4;
}

/** Decode of the largest section (2 x window + 1 latents) with `tiling`: one tile's activations + the output video. */
export function vaeDecodeBytes(m: PlanModels, job: PlanJob, tiling: TilingOptions, bpe: number): number {
  const frames = m.vae.temporalRatio * (2 * job.window + 1) - (m.vae.temporalRatio - 1);
  const tileFrames = tiling.temporal ? Math.min(frames, tiling.tileSampleMinNumFrames + 1) : frames;
  const tileH = tiling.spatial ? Math.min(job.height, tiling.tileSampleMinHeight) : job.height;
  const tileW = tiling.spatial ? Math.min(job.width, tiling.tileSampleMinWidth) : job.width;
  const c = m.vae.blockOutChannels[Math.min(1, m.vae.blockOutChannels.length - 1)];
  const tile = tileFrames * tileH * tileW * VAE_DECODE_LIVE_COPIES * c * bpe;
  const output = 3 * frames * job.height * job.width * bpe;
  return tile + CONV_WORKSPACE_ELEMENTS * bpe + output;
}

/** Encode of one frame (the start or end image) with `tiling`. */
export function vaeEncodeBytes(m: PlanModels, job: PlanJob, tiling: TilingOptions, bpe: number): number {
  const tileH = tiling.spatial ? Math.min(job.height, tiling.tileSampleMinHeight) : job.height;
  const tileW = tiling.spatial ? Math.min(job.width, tiling.tileSampleMinWidth) : job.width;
  return tileH * tileW * VAE_ENCODE_LIVE_COPIES * m.vae.blockOutChannels[0] * bpe + CONV_WORKSPACE_ELEMENTS * bpe;
}

/** The reference's framewise tiling (no spatial tiles), then spatial tiles of each size. */
export function tilingCandidates(): { label: string; tiling: TilingOptions }[] {
  return [
    { label: 'temporal tiles only (the reference default)', tiling: { ...DEFAULT_TILING } },
    ...TILE_SIZES.map((s) => ({
      label: `${s}x${s} px tiles`,
      tiling: { ...DEFAULT_TILING, spatial: true, tileSampleMinHeight: s, tileSampleMinWidth: s, tileSampleStrideHeight: (s * 3) / 4, tileSampleStrideWidth: (s * 3) / 4 },
    })),
  ];
}

// ---- planning ----------------------------------------------------------------------------------------------------

interface Choice {
  dit: DitPlan;
  llama: EncoderPlan;
  clip: EncoderPlan;
  siglip: EncoderPlan;
  tile: { label: string; tiling: TilingOptions };
}

function encoderPlan(e: EncoderShape, mode: 'resident' | 'streamed', lifetime: Lifetime, slots = 2): EncoderPlan {
  const w = e.weights;
  const deviceBytes = mode === 'resident' ? totalBytes(w) : w.fixedBytes - w.hostableBytes + Math.min(slots, w.unitBytes.length) * max(w.unitBytes);
  return { mode, slots: mode === 'streamed' ? slots : 0, hostCopy: mode === 'streamed' && lifetime === 'per-job' ? 'source' : 'packed', lifetime, deviceBytes };
}

function ditPlan(m: PlanModels, mode: 'resident' | 'streamed', slots = 2, residentBlocks = 0, format: StreamWeights = 'bf16'): DitPlan {
  const w = m.dit.weights;
  if (mode === 'resident') return { mode, slots: 0, residentBlocks: w.unitBytes.length, deviceBytes: totalBytes(w), streamedBytesPerForward: 0, weights8bit: null, scratchBytes: 0 };
  const w8 = format === 'bf16' ? null : m.dit.weights8bit!; // validate() checked it is there
  const resident = w.unitBytes.slice(0, residentBlocks);
  // streamed blocks: copied (and held in slots) as stored; 8-bit adds one scratch for the largest block's matrices
  const streamed = (w8 ? w8.unitBytes : w.unitBytes).slice(residentBlocks);
  const scratchBytes = w8 ? max(w8.scratchBytes.slice(residentBlocks)) : 0;
  const deviceBytes = w.fixedBytes + sum(resident) + Math.min(slots, Math.max(1, streamed.length)) * max(streamed) + scratchBytes;
  return { mode, slots, residentBlocks, deviceBytes, streamedBytesPerForward: sum(streamed), weights8bit: w8 ? (format as 'int8' | 'fp8') : null, scratchBytes };
}

function phasePeaks(m: PlanModels, job: PlanJob, bpe: number, c: Choice): PhasePeak[] {
  const kept = c.dit.deviceBytes + m.vae.weightBytes + sum([c.llama, c.clip, c.siglip].filter((e) => e.lifetime === 'kept').map((e) => e.deviceBytes));
  const perJob = (e: EncoderPlan) => (e.lifetime === 'per-job' ? e.deviceBytes : 0);
  return [
    { phase: 'text-encode', bytes: kept + perJob(c.llama) + perJob(c.clip) + Math.max(encoderActivationBytes(m.llama, bpe), encoderActivationBytes(m.clip, bpe)) },
    { phase: 'image-encode', bytes: kept + perJob(c.siglip) + encoderActivationBytes(m.siglip, bpe) },
    { phase: 'vae-encode', bytes: kept + vaeEncodeBytes(m, job, c.tile.tiling, bpe) },
    { phase: 'sample', bytes: kept + ditActivationBytes(m, job, bpe) },
    { phase: 'decode', bytes: kept + vaeDecodeBytes(m, job, c.tile.tiling, bpe) },
  ];
}

/** Host copies of streamed weights: the DiT's streamed blocks always, a streamed encoder while it is loaded. */
function hostPeaks(m: PlanModels, c: Choice): PhasePeak[] {
  const host = (e: EncoderPlan, s: EncoderShape) =>
    e.mode !== 'streamed' ? 0 : (e.hostCopy === 'packed' ? sum(s.weights.unitBytes) : Math.min(e.slots, s.weights.unitBytes.length) * max(s.weights.unitBytes)) + s.weights.hostableBytes;
  const dit = c.dit.streamedBytesPerForward;
  const kept = (e: EncoderPlan, s: EncoderShape) => (e.lifetime === 'kept' ? host(e, s) : 0);
  const always = dit + kept(c.llama, m.llama) + kept(c.siglip, m.siglip);
  const perJob = (e: EncoderPlan, s: EncoderShape) => (e.lifetime === 'per-job' ? host(e, s) : 0);
  return [
    { phase: 'text-encode', bytes: always + perJob(c.llama, m.llama) },
    { phase: 'image-encode', bytes: always + perJob(c.siglip, m.siglip) },
    { phase: 'vae-encode', bytes: always },
    { phase: 'sample', bytes: always },
    { phase: 'decode', bytes: always },
  ];
}

function validate(input: PlanInput): void {
  const bad = (what: string) => {
    throw new RangeError(`memory plan: ${what}`);
  };
  if (!(input.budgetBytes > 0)) bad(`the budget must be positive, got ${input.budgetBytes}`);
  if (![2, 4].includes(input.bytesPerElement)) bad(`bytesPerElement must be 2 or 4, got ${input.bytesPerElement}`);
  if (input.streamWeights !== undefined && !STREAM_WEIGHTS.includes(input.streamWeights)) bad(`streamWeights must be one of ${STREAM_WEIGHTS.join(', ')}, got ${String(input.streamWeights)}`);
  if (input.streamWeights && input.streamWeights !== 'bf16' && !input.models.dit.weights8bit) bad(`streamWeights '${input.streamWeights}' needs the DiT's 8-bit block sizes (models.dit.weights8bit, from planModels)`);
  const { height, width, window } = input.job;
  if (!(height > 0 && width > 0 && Number.isInteger(window) && window > 0)) bad(`the job shape ${width}x${height} window ${window} is not valid`);
}

/**
 * Decide, in this order of preference (each step is taken only when the previous plan does not fit):
 * 1. everything resident and kept loaded between jobs (nothing is ever copied twice);
 * 2. the encoders loaded per job and freed after use, LLaMA first (14 GB in bf16, run once per prompt), then
 *    CLIP, then SigLIP: the DiT, which runs every step, stays resident; a per-job encoder streams its layers
 *    only when it does not fit resident beside the DiT;
 * 3. the DiT streams its blocks (2 slots, 1 if 2 do not fit), all encoders per job and streamed (their weights
 *    cross to the device once per pass either way, so streaming them costs nothing and frees room), VAE tiles of
 *    at most 256 px (the reference's low-VRAM tile), and every byte left keeps DiT blocks resident (each resident
 *    block is a block less to copy every forward).
 * In each step the VAE gets the largest tiles that fit (temporal-only tiling, the reference default, first).
 */
export function planMemory(input: PlanInput): MemoryPlan {
  validate(input);
  const { models: m, job, bytesPerElement: bpe } = input;
  const format = input.streamWeights ?? 'bf16';
  const reserveBytes = input.reserveBytes ?? 0.75 * GiB;
  const allocatorBudgetBytes = Math.max(0, input.budgetBytes - reserveBytes);
  const usableBytes = allocatorBudgetBytes * (1 - FRAGMENTATION_MARGIN);
  const reasons: string[] = [
    `budget ${fmtGiB(input.budgetBytes)}: ${fmtGiB(reserveBytes)} reserved for the CUDA context and libraries, allocator capped at ${fmtGiB(allocatorBudgetBytes)}, plans fill ${fmtGiB(usableBytes)} (${FRAGMENTATION_MARGIN * 100}% kept for fragmentation)`,
    `job ${job.width}x${job.height}, window ${job.window}: ${ditTokens(m, job)} DiT tokens, ~${fmtGiB(ditActivationBytes(m, job, bpe))} of DiT activations; weights: DiT ${fmtGiB(totalBytes(m.dit.weights))}, LLaMA ${fmtGiB(totalBytes(m.llama.weights))} (layers used), CLIP ${fmtGiB(totalBytes(m.clip.weights))}, SigLIP ${fmtGiB(totalBytes(m.siglip.weights))}, VAE ${fmtGiB(m.vae.weightBytes)}`,
  ];
  const tiles = tilingCandidates();
  const fits = (c: Choice) => phasePeaks(m, job, bpe, c).every((p) => p.bytes <= usableBytes);
  const withTile = (c: Omit<Choice, 'tile'>, candidates = tiles): Choice | null => {
    for (const tile of candidates) if (fits({ ...c, tile })) return { ...c, tile };
    return null;
  };
  const perJobEncoder = (e: EncoderShape, others: (enc: EncoderPlan) => Omit<Choice, 'tile'>) => {
    const resident = encoderPlan(e, 'resident', 'per-job');
    return withTile(others(resident)) ? resident : encoderPlan(e, 'streamed', 'per-job');
  };

  // 1 + 2: the DiT resident; encoders kept, then per job one by one.
  const ditResident = ditPlan(m, 'resident');
  const keptAll = { llama: encoderPlan(m.llama, 'resident', 'kept'), clip: encoderPlan(m.clip, 'resident', 'kept'), siglip: encoderPlan(m.siglip, 'resident', 'kept') };
  const steps: { why: string; build: () => Omit<Choice, 'tile'> }[] = [
    { why: 'everything fits resident: all models stay loaded between jobs', build: () => ({ dit: ditResident, ...keptAll }) },
    {
      why: 'LLaMA does not fit beside the resident DiT: it is loaded per job for the prompts and freed before sampling',
      build: () => {
        const llama = perJobEncoder(m.llama, (l) => ({ dit: ditResident, ...keptAll, llama: l }));
        return { dit: ditResident, ...keptAll, llama };
      },
    },
    {
      why: 'the text encoders (LLaMA, CLIP) are loaded per job and freed after encoding; the DiT stays resident',
      build: () => {
        const clip = encoderPlan(m.clip, 'resident', 'per-job');
        const llama = perJobEncoder(m.llama, (l) => ({ dit: ditResident, ...keptAll, clip, llama: l }));
        return { dit: ditResident, ...keptAll, clip, llama };
      },
    },
    {
      why: 'every encoder is loaded per job and freed after use; the DiT stays resident',
      build: () => {
        const clip = encoderPlan(m.clip, 'resident', 'per-job');
        const siglip = perJobEncoder(m.siglip, (s) => ({ dit: ditResident, ...keptAll, clip, siglip: s }));
        const llama = perJobEncoder(m.llama, (l) => ({ dit: ditResident, ...keptAll, clip, siglip, llama: l }));
        return { dit: ditResident, ...keptAll, clip, siglip, llama };
      },
    },
  ];
  let chosen: Choice | null = null;
  for (const s of steps) {
    chosen = withTile(s.build());
    if (chosen) {
      reasons.push(s.why);
      if (format !== 'bf16') reasons.push(`--stream-weights ${format} has no effect: the DiT is resident (only streamed blocks are stored in 8 bits)`);
      break;
    }
  }

  // 3: the DiT streams.
  if (!chosen) {
    const lean = {
      llama: encoderPlan(m.llama, 'streamed', 'per-job'),
      clip: encoderPlan(m.clip, 'resident', 'per-job'),
      siglip: encoderPlan(m.siglip, 'streamed', 'per-job'),
    };
    const smallTiles = tiles.filter((t) => t.tiling.spatial && t.tiling.tileSampleMinHeight <= 256);
    reasons.push(
      `the DiT (${fmtGiB(totalBytes(m.dit.weights))}) does not fit resident with its activations: its blocks stream from pinned host memory`,
      'every encoder is loaded per job, streams its layers and is freed after use (one pass copies its weights once either way)',
    );
    if (format !== 'bf16')
      reasons.push(
        `DiT: streamed blocks stored as ${format} with per-row f32 scales (${fmtGiB(sum(m.dit.weights8bit!.unitBytes))} instead of ${fmtGiB(sum(m.dit.weights.unitBytes))}), dequantized on the device into a ${fmtGiB(max(m.dit.weights8bit!.scratchBytes))} scratch after each copy`,
      );
    for (const slots of [2, 1]) {
      const base = withTile({ dit: ditPlan(m, 'streamed', slots, 0, format), ...lean }, smallTiles);
      if (!base) continue;
      // keep as many blocks resident as the phases allow (all blocks resident = step 1, already excluded)
      let resident = 0;
      const nBlocks = m.dit.weights.unitBytes.length;
      // Resident blocks only while STREAM_HEADROOM stays free: at the cap the allocator flushes its cache and the frees
      // synchronise the copy stream (H100, 640x640, 8 GiB: 1.36x slower with 0.01 GiB left, hidden copies with 1.27 GiB).
      const roomy = (c: Choice) => phasePeaks(m, job, bpe, c).every((p) => p.bytes <= usableBytes - STREAM_HEADROOM_BYTES);
      while (resident + 1 < nBlocks && roomy({ ...base, dit: ditPlan(m, 'streamed', slots, resident + 1, format) })) resident++;
      chosen = { ...base, dit: ditPlan(m, 'streamed', slots, resident, format) };
      reasons.push(
        slots === 2 ? 'DiT: 2 device slots, so the next block is copied while one computes' : 'DiT: only 1 device slot fits, so copies cannot overlap compute (slow)',
        resident
          ? `DiT: ${resident} of ${nBlocks} blocks stay resident with the memory left; ${fmtGiB(chosen.dit.streamedBytesPerForward)} streamed per forward`
          : `DiT: no memory left to keep blocks resident; all ${fmtGiB(chosen.dit.streamedBytesPerForward)} of blocks stream every forward`,
      );
      break;
    }
  }

  const fitsAll = chosen !== null;
  let problem: string | undefined;
  if (!chosen) {
    // nothing fits: report the leanest plan and how much it misses by
    chosen = {
      dit: ditPlan(m, 'streamed', 1, 0, format),
      llama: encoderPlan(m.llama, 'streamed', 'per-job', 1),
      clip: encoderPlan(m.clip, 'resident', 'per-job'),
      siglip: encoderPlan(m.siglip, 'streamed', 'per-job', 1),
      tile: tiles[tiles.length - 1],
    };
    const peak = max(phasePeaks(m, job, bpe, chosen).map((p) => p.bytes));
    problem = `even streaming every model through 1 slot with ${chosen.tile.label} needs ~${fmtGiB(peak)} at the peak, ${fmtGiB(peak - usableBytes)} more than the ${fmtGiB(usableBytes)} usable; lower --resolution or --window, or raise --vram-budget`;
    reasons.push(`does not fit: ${problem}`);
  }
  const c = chosen;
  const hostBudget = input.hostBudgetBytes ?? 32 * GiB;
  const hostPeak = max(hostPeaks(m, c).map((p) => p.bytes));
  if (hostPeak > hostBudget) reasons.push(`host memory: the streamed weights' pinned host copies peak at ~${fmtGiB(hostPeak)}, over the ${fmtGiB(hostBudget)} host budget`);
  reasons.push(`VAE: ${c.tile.label} (the largest that fits the decode of ${2 * job.window + 1} latent frames)`);
  for (const [name, e] of [['LLaMA', c.llama], ['CLIP-L', c.clip], ['SigLIP', c.siglip]] as const)
    if (e.mode === 'streamed' && e.lifetime === 'kept') reasons.push(`${name}: streamed and kept`);
  const phases = phasePeaks(m, job, bpe, c);
  const hostPhases = hostPeaks(m, c);
  const hostTop = hostPhases.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const top = phases.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  reasons.push(`peak ~${fmtGiB(top.bytes)} in ${top.phase}; host memory for streamed weights ~${fmtGiB(hostTop.bytes)} at most (${hostTop.phase})`);
  return {
    job: { ...job },
    budgetBytes: input.budgetBytes,
    reserveBytes,
    allocatorBudgetBytes,
    usableBytes,
    fits: fitsAll,
    ...(problem ? { problem } : {}),
    dit: c.dit,
    llama: c.llama,
    clip: c.clip,
    siglip: c.siglip,
    vae: { deviceBytes: m.vae.weightBytes, tiling: c.tile.tiling, tileLabel: c.tile.label },
    phases,
    hostPhases,
    order: loadOrder(c),
    reasons,
  };
}

function describe(name: string, e: EncoderPlan): string {
  return `${name} (${e.mode === 'streamed' ? `streamed, ${e.slots} slots${e.hostCopy === 'source' ? ', layers read from the checkpoint each pass' : ''}` : 'resident'})`;
}

/** Start-up loads, then each job's sequence of loads, runs and frees. */
function loadOrder(c: Choice): string[] {
  const dit = c.dit.mode === 'resident' ? 'DiT (resident)' : `DiT (streamed${c.dit.weights8bit ? ` as ${c.dit.weights8bit}` : ''}, ${c.dit.slots} slots, ${c.dit.residentBlocks} blocks resident)`;
  const enc = [['LLaMA', c.llama], ['CLIP-L', c.clip], ['SigLIP', c.siglip]] as const;
  const kept = enc.filter(([, e]) => e.lifetime === 'kept').map(([n, e]) => describe(n, e));
  const out = [`start-up: load ${[dit, 'VAE', ...kept].join(', ')}`];
  const job = (names: (typeof enc)[number][], run: string) => {
    const perJob = names.filter(([, e]) => e.lifetime === 'per-job');
    if (perJob.length) out.push(`job: load ${perJob.map(([n, e]) => describe(n, e)).join(', ')}`);
    out.push(`job: ${run}`);
    if (perJob.length) out.push(`job: free ${perJob.map(([n]) => n).join(', ')}`);
  };
  job([enc[0], enc[1]], 'encode the prompts (LLaMA hidden_states[-3], CLIP pooled)');
  job([enc[2]], 'encode the image (SigLIP)');
  out.push('job: VAE-encode the start image', 'job: per section, sample with the DiT, then VAE-decode');
  return out;
}
