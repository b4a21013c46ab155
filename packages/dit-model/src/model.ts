import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import { openCheckpoint, type TensorSource } from '@framepack/safetensors';
import { type BlockContext, dualBlockModulatedInput, dualStreamBlock, singleStreamBlock } from './blocks.js';
import { type DiTConfig, parseConfig, readConfigFile } from './config.js';
import { imageProjection, patchEmbed, timeTextEmbed } from './embeddings.js';
import { DiTConfigError, DiTInputError } from './errors.js';
import { poolRopeGrid, ropeCosSin, ropeGrid, type RopeSpec } from './rope.js';
import type { StepSkipHook } from './step-skip.js';
import { type BlockStreamOptions, BlockStreamer, streamedBlockNames } from './streaming.js';
import { tokenRefiner } from './token-refiner.js';
import { type DiTWeights, loadWeights, ParamScope, resolveDType, validateWeights, type WeightLoadOptions } from './weights.js';

/** The reference forward's arguments, camelCased. Tensors must live on the model's device. */
export interface PackedDiTInputs {
  /** Noisy latents (B, C, T, H, W). */
  hiddenStates: Tensor;
  /** (B) sigma * 1000 (one value is broadcast over the batch). */
  timestep: Tensor;
  /** LLaMA features (B, L, textEmbedDim). */
  encoderHiddenStates: Tensor;
  /** (B, L) bool, true = a valid text token (absent: every token is valid). */
  encoderAttentionMask?: Tensor | null;
  /** CLIP-L pooled (B, pooledProjectionDim). */
  pooledProjections: Tensor;
  /** (B) distilled guidance * 1000 (one value is broadcast over the batch). */
  guidance: Tensor;
  /** (B|1, T) frame positions of the noisy latents (default 0..T-1). */
  latentIndices?: Tensor | null;
  /** 1x clean context (B|1, 16, T1, H, W) and its frame positions (B|1, T1). */
  cleanLatents?: Tensor | null;
  cleanLatentIndices?: Tensor | null;
  /** 2x clean context (B|1, 16, T2, H, W) and (B|1, T2). */
  cleanLatents2x?: Tensor | null;
  cleanLatentIndices2x?: Tensor | null;
  /** 4x clean context (B|1, 16, T4, H, W) and (B|1, T4). */
  cleanLatents4x?: Tensor | null;
  cleanLatentIndices4x?: Tensor | null;
  /** SigLIP last_hidden_state (B|1, N, imageProjDim); required when the model has an image projection. */
  imageEmbeddings?: Tensor | null;
}

export interface ForwardOptions {
  stepSkip?: StepSkipHook;
  step?: number;
  totalSteps?: number;
  /**
   * Receives named intermediates (the reference's module outputs: packed_hidden_states, rope_freqs, temb,
   * context_embedder, image_projection, transformer_blocks.i(.context), single_transformer_blocks.i(.context),
   * norm_out). The tensor is only valid during the call: copy what you need.
   */
  debug?: (name: string, t: Tensor) => void;
}

export interface ModelLoadOptions extends WeightLoadOptions {
  /**
   * Keep the dual/single blocks in host memory (pinned on CUDA) and stream them through `slots` device buffers
   * during the forward (low VRAM); `residentBlocks` keeps the first blocks on the device too. Everything else
   * stays on the device.
   */
  streamBlocks?: BlockStreamOptions;
}

export interface LoadOptions extends ModelLoadOptions {
  /** Use this config instead of the config.json beside the weights (diffusers snake_case or camelCase keys). */
  config?: Record<string, unknown> | DiTConfig;
}

/**
 * FramePack's HunyuanVideoTransformer3DModelPacked on tensor-core: packed image tokens
 * [clean 4x | clean 2x | clean 1x | noisy] with 3-D RoPE, context [SigLIP tokens | refined text], dual-stream
 * then single-stream blocks, adaLN output head; returns the flow prediction for the noisy window in f32.
 */
export class HunyuanVideoTransformer3DModelPacked {
  readonly config: DiTConfig;
  readonly weights: DiTWeights;
  /** Streamed blocks (low VRAM), or null when every weight is resident in `weights`. */
  readonly streamer: BlockStreamer | null;
  readonly #projOutWeight: Tensor;
  readonly #projOutBias: Tensor;

  private constructor(config: DiTConfig, weights: DiTWeights, streamer: BlockStreamer | null) {
    this.config = config;
    this.weights = weights;
    this.streamer = streamer;
    // high_quality_fp32_output_for_inference: the output projection runs in f32
    this.#projOutWeight = T.cast(weights.root.get('proj_out.weight'), 'f32');
    this.#projOutBias = T.cast(weights.root.get('proj_out.bias'), 'f32');
  }

  get dtype(): DType {
    return this.weights.dtype;
  }
  get device(): DeviceType {
    return this.weights.device;
  }

  /**
   * Load from a diffusers model folder (config.json + model.safetensors or a sharded *.index.json), or from a
   * .safetensors / .index.json file with config.json beside it (or `opts.config`).
   */
  static load(dirOrFile: string, opts: LoadOptions = {}): HunyuanVideoTransformer3DModelPacked {
    if (!existsSync(dirOrFile)) throw new DiTConfigError(`${dirOrFile} does not exist (expected a model folder, a .safetensors file or a .safetensors.index.json)`);
    const dir = statSync(dirOrFile).isDirectory() ? dirOrFile : dirname(dirOrFile);
    let config: DiTConfig;
    if (opts.config) config = toConfig(opts.config);
    else {
      const cfgPath = join(dir, 'config.json');
      if (!existsSync(cfgPath)) throw new DiTConfigError(`no config.json in ${dir}: pass opts.config or put the diffusers config.json beside the weights`);
      config = readConfigFile(cfgPath);
    }
    const source = openCheckpoint(dirOrFile);
    try {
      return HunyuanVideoTransformer3DModelPacked.fromWeights(config, source, opts);
    } finally {
      source.close();
    }
  }

  /** Build from a config (diffusers JSON or DiTConfig) and weights under the reference key names. */
  static fromWeights(config: Record<string, unknown> | DiTConfig, weights: TensorSource | Record<string, Tensor>, opts: ModelLoadOptions = {}): HunyuanVideoTransformer3DModelPacked {
    const cfg = toConfig(config);
    if (!opts.streamBlocks) return new HunyuanVideoTransformer3DModelPacked(cfg, loadWeights(cfg, weights, opts), null);
    const shapes = validateWeights(cfg, weights);
    const dtype = resolveDType(weights, opts);
    const device = opts.device ?? 'cpu';
    const streamed = new Set(streamedBlockNames(cfg, opts.streamBlocks));
    const isStreamedKey = (k: string) => streamed.has(/^(?:single_)?transformer_blocks\.\d+/.exec(k)?.[0] ?? '');
    const streamer = BlockStreamer.fromSource(cfg, weights, shapes, { dtype, device, ...opts.streamBlocks });
    try {
      return new HunyuanVideoTransformer3DModelPacked(cfg, loadWeights(cfg, weights, { dtype, device }, (k) => !isStreamedKey(k)), streamer);
    } catch (e) {
      streamer.dispose();
      throw e;
    }
  }

  dispose(): void {
    this.#projOutWeight.dispose();
    this.#projOutBias.dispose();
    this.weights.dispose();
    this.streamer?.dispose();
  }

  /** A block's parameters: resident, or streamed in (then `#blockDone` must follow once its compute is queued). */
  #blockParams(name: string): ParamScope {
    return this.streamer?.has(name) ? this.streamer.acquire(name) : this.weights.root.at(name);
  }
  #blockDone(name: string, prefetch = true): void {
    this.streamer?.release(name, prefetch);
  }

  /** One forward: (B, C, T, H, W) noisy latents -> (B, outChannels, T, H, W) f32 flow prediction. */
  forward(inputs: PackedDiTInputs, opts: ForwardOptions = {}): Tensor {
    const shape = this.#validate(inputs);
    const c = this.config;
    const root = this.weights.root;
    const debug = opts.debug;
    const hook = opts.stepSkip;
    if (hook && c.numLayers === 0) throw new DiTInputError('step skipping needs at least one dual-stream block (its norm1 gives the modulated input)');

    const prep = T.tidy(() => {
      const image = this.#packImageTokens(inputs, shape);
      const temb = timeTextEmbed(root.at('time_text_embed'), inputs.timestep, inputs.guidance, T.cast(inputs.pooledProjections, this.dtype));
      const ctx = this.#context(inputs, shape, debug);
      if (debug) {
        debug('packed_hidden_states', image.hidden);
        debug('rope_freqs', image.rope);
        debug('temb', temb);
      }
      const { cos, sin } = ropeCosSin(image.rope);
      return { hidden: image.hidden, cos, sin, temb, context: ctx.context, mask: ctx.mask };
    });

    let x: Tensor | null = null;
    let cx: Tensor | null = null;
    try {
      let skip = false;
      if (hook) {
        const modulatedInput = dualBlockModulatedInput(this.#blockParams('transformer_blocks.0'), prep.hidden, prep.temb);
        try {
          skip = hook.shouldSkip({ step: opts.step ?? 0, totalSteps: opts.totalSteps ?? 0, modulatedInput, hidden: prep.hidden });
        } finally {
          modulatedInput.dispose();
          if (skip) this.#blockDone('transformer_blocks.0', false);
        }
      }
      if (skip) x = hook!.applySkip(prep.hidden);
      else {
        const ctx: BlockContext = { temb: prep.temb, ropeCos: prep.cos, ropeSin: prep.sin, mask: prep.mask, heads: c.numAttentionHeads };
        x = prep.hidden;
        cx = prep.context;
        const step = (name: string, block: typeof dualStreamBlock) => {
          const [nx, nc] = block(this.#blockParams(name), x!, cx!, ctx);
          this.#blockDone(name);
          if (x !== prep.hidden) x!.dispose();
          if (cx !== prep.context) cx!.dispose();
          x = nx;
          cx = nc;
          if (debug) {
            debug(name, nx);
            debug(`${name}.context`, nc);
          }
        };
        for (let i = 0; i < c.numLayers; i++) step(`transformer_blocks.${i}`, dualStreamBlock);
        for (let i = 0; i < c.numSingleLayers; i++) step(`single_transformer_blocks.${i}`, singleStreamBlock);
        if (cx !== prep.context) cx!.dispose();
        cx = null;
        // the hook makes its own copy of what it keeps; x may still be prep.hidden with no blocks at all
        hook?.record(prep.hidden, x);
      }
      const out = this.#head(x!, prep.temb, shape, debug);
      return out;
    } finally {
      // on success x is the stack's output (the head made its own result); on a throw, cx may be a block's too
      if (x && x !== prep.hidden) (x as Tensor).dispose();
      if (cx && cx !== prep.context) (cx as Tensor).dispose();
      T.disposeAll(prep);
      this.streamer?.releaseAll();
    }
  }

  /** norm_out on the noisy tokens (the last T*H'*W'), proj_out in f32, unpatchify to (B, C, T, H, W). */
  #head(x: Tensor, temb: Tensor, s: Shape, debug?: ForwardOptions['debug']): Tensor {
    const c = this.config;
    return T.tidy(() => {
      const p = this.weights.root;
      const e = T.linear(T.silu(temb), p.get('norm_out.linear.weight'), p.get('norm_out.linear.bias'));
      const [scale, shift] = T.chunk(T.reshape(e, [e.shape[0], 1, -1]), 2, 2);
      const norm = (t: Tensor) => T.add(T.mul(T.layerNorm(t, null, null, 1e-6), T.add(scale, 1)), shift);
      if (debug) debug('norm_out', norm(x));
      const n = s.gridT * s.gridH * s.gridW;
      const y = norm(T.slice(x, 1, x.shape[1] - n));
      const out = T.linear(T.cast(y, 'f32'), this.#projOutWeight, this.#projOutBias);
      return T.unpatchify(out, [s.gridT, s.gridH, s.gridW], [c.patchSizeT, c.patchSize, c.patchSize]);
    });
  }

  /** Packed image tokens [clean 4x | clean 2x | clean 1x | noisy] and their rope grid (flattened tables concatenated). */
  #packImageTokens(inp: PackedDiTInputs, s: Shape): { hidden: Tensor; rope: Tensor } {
    const c = this.config;
    const root = this.weights.root;
    const spec: RopeSpec = { axesDim: c.ropeAxesDim, theta: c.ropeTheta };
    const patch: [number, number, number] = [c.patchSizeT, c.patchSize, c.patchSize];
    const groups: { tokens: Tensor; rows: number[][]; pool?: [number, number, number] }[] = [];
    const cast = (t: Tensor) => T.cast(t, this.dtype);

    const latentRows = inp.latentIndices ? indexRows(inp.latentIndices) : [Array.from({ length: s.gridT }, (_, i) => i)];
    const clean: [Tensor | null | undefined, Tensor | null | undefined, string, [number, number, number], [number, number, number] | undefined][] = [
      [inp.cleanLatents4x, inp.cleanLatentIndices4x, 'proj_4x', [4, 8, 8], [4, 4, 4]],
      [inp.cleanLatents2x, inp.cleanLatentIndices2x, 'proj_2x', [2, 4, 4], [2, 2, 2]],
      [inp.cleanLatents, inp.cleanLatentIndices, 'proj', [1, 2, 2], undefined],
    ];
    for (const [lat, idx, proj, k, pool] of clean) {
      if (!lat || !idx) continue;
      groups.push({ tokens: patchEmbed(root.at(`clean_x_embedder.${proj}`), cast(lat), k, pool !== undefined), rows: indexRows(idx), pool });
    }
    groups.push({ tokens: patchEmbed(root.at('x_embedder.proj'), cast(inp.hiddenStates), patch), rows: latentRows });

    // one rope row per batch item only when the positions differ between items
    const distinct = groups.some((g) => g.rows.some((r) => r.join() !== g.rows[0].join()));
    const ropeB = distinct ? s.B : 1;
    const tokens: Tensor[] = [];
    const ropes: Tensor[] = [];
    for (const g of groups) {
      tokens.push(expandBatch(g.tokens, s.B));
      const rows = g.rows.length === ropeB ? g.rows : Array.from({ length: ropeB }, (_, b) => g.rows[Math.min(b, g.rows.length - 1)]);
      const grid = ropeGrid(spec, rows, s.gridH, s.gridW, this.device);
      const table = g.pool ? poolRopeGrid(grid, g.pool) : grid;
      ropes.push(T.reshape(table, [ropeB, -1, table.shape[4]]));
    }
    return { hidden: T.cat(tokens, 1), rope: T.cat(ropes, 1) };
  }

  /**
   * Context tokens [SigLIP projection | refined text] cropped to the valid ones. Batch 1: the valid tokens only
   * (the reference's crop), no mask. Batch > 1: each row's valid tokens first, zero padding after, and a key
   * mask so every row attends exactly as if it ran alone (the reference's varlen attention).
   */
  #context(inp: PackedDiTInputs, s: Shape, debug?: ForwardOptions['debug']): { context: Tensor; mask: Tensor | null } {
    const c = this.config;
    const B = s.B;
    const root = this.weights.root;
    const mask = inp.encoderAttentionMask ? (inp.encoderAttentionMask.dtype === 'bool' ? inp.encoderAttentionMask : T.ne(inp.encoderAttentionMask, 0)) : null;
    const text = tokenRefiner(root.at('context_embedder'), T.cast(inp.encoderHiddenStates, this.dtype), inp.timestep, mask, c.numAttentionHeads, c.numRefinerLayers);
    if (debug) debug('context_embedder', text);
    const L = text.shape[1];
    const textValid: boolean[][] = mask ? boolRows(mask) : Array.from({ length: B }, () => new Array<boolean>(L).fill(true));
    let context = text;
    let valid = textValid;
    if (c.hasImageProj) {
      const img = expandBatch(imageProjection(root.at('image_projection'), T.cast(inp.imageEmbeddings!, this.dtype)), B);
      if (debug) debug('image_projection', img);
      context = T.cat([img, text], 1);
      valid = textValid.map((r) => [...new Array<boolean>(img.shape[1]).fill(true), ...r]);
    }
    const keep = valid.map((r) => r.flatMap((v, i) => (v ? [i] : [])));
    const M = Math.max(...keep.map((k) => k.length));
    if (M === 0) throw new DiTInputError('encoderAttentionMask marks no valid text token and there are no image tokens: the context is empty');
    if (keep.every((k) => k.length === context.shape[1])) return { context, mask: null };
    const idx = (k: number[]) => T.tensor(k, [k.length], { dtype: 'i32', device: this.device });
    if (B === 1) return { context: T.indexSelect(context, 1, idx(keep[0])), mask: null };
    const D = context.shape[2];
    const rows = keep.map((k, b) => {
      const row = T.indexSelect(T.slice(context, 0, b, b + 1), 1, idx(k.length ? k : [0]));
      const got = k.length ? row : T.slice(row, 1, 0, 0);
      return k.length === M ? got : T.cat([got, T.zeros([1, M - k.length, D], { dtype: this.dtype, device: this.device })], 1);
    });
    const N = s.imageTokens;
    const keyMask = keep.flatMap((k) => [...new Array<number>(N).fill(1), ...Array.from({ length: M }, (_, j) => (j < k.length ? 1 : 0))]);
    return { context: T.cat(rows, 0), mask: T.ne(T.tensor(keyMask, [B, 1, 1, N + M], { device: this.device }), 0) };
  }
  #validate(inp: PackedDiTInputs): Shape {
    const c = this.config;
    const fail = (m: string): never => {
      throw new DiTInputError(m);
    };
    const hs = inp.hiddenStates;
    if (!hs || hs.ndim !== 5) fail(`hiddenStates must be (B, C, T, H, W), got ${hs ? `[${hs.shape}]` : hs}`);
    const [B, C, nT, H, W] = hs.shape;
    if (C !== c.inChannels) fail(`hiddenStates has ${C} channels, the model expects ${c.inChannels}`);
    if (nT % c.patchSizeT || H % c.patchSize || W % c.patchSize) fail(`hiddenStates [${hs.shape}]: T must divide by ${c.patchSizeT} and H, W by ${c.patchSize}`);
    const tensors = Object.entries(inp).filter(([, t]) => t) as [string, Tensor][];
    for (const [n, t] of tensors) if (t.device !== this.device) fail(`${n} is on ${t.device} but the model is on ${this.device}: move it with T.toDevice()`);
    const perBatch = (n: string, t: Tensor | null | undefined, rest: number[] | null, allowOne: boolean) => {
      if (!t) return fail(`${n} is required`);
      if (rest && (t.ndim !== rest.length + 1 || rest.some((d, i) => d >= 0 && t.shape[i + 1] !== d))) fail(`${n} must be [${['B', ...rest.map((d) => (d < 0 ? '*' : d))]}], got [${t.shape}]`);
      if (t.shape[0] !== B && !(allowOne && t.shape[0] === 1)) fail(`${n} has batch ${t.shape[0]}, hiddenStates has ${B}${allowOne ? ' (1 is broadcast)' : ''}`);
    };
    const scalarPerBatch = (n: string, t: Tensor) => {
      if (!t) fail(`${n} is required (a (B) tensor)`);
      if (t.numel !== B && t.numel !== 1) fail(`${n} must hold 1 or B = ${B} values, got [${t.shape}]`);
    };
    scalarPerBatch('timestep', inp.timestep);
    scalarPerBatch('guidance', inp.guidance);
    perBatch('encoderHiddenStates', inp.encoderHiddenStates, [-1, c.textEmbedDim], false);
    const L = inp.encoderHiddenStates.shape[1];
    if (inp.encoderAttentionMask) perBatch('encoderAttentionMask', inp.encoderAttentionMask, [L], false);
    perBatch('pooledProjections', inp.pooledProjections, [c.pooledProjectionDim], false);
    if (c.hasImageProj) perBatch('imageEmbeddings', inp.imageEmbeddings, [-1, c.imageProjDim], true);
    else if (inp.imageEmbeddings) fail('imageEmbeddings were given but the model has no image projection (has_image_proj is false)');
    if (inp.latentIndices) perBatch('latentIndices', inp.latentIndices, [nT / c.patchSizeT], true);

    const gH = H / c.patchSize, gW = W / c.patchSize;
    let tokens = (nT / c.patchSizeT) * gH * gW;
    const pairs: [string, Tensor | null | undefined, string, Tensor | null | undefined, [number, number, number]][] = [
      ['cleanLatents', inp.cleanLatents, 'cleanLatentIndices', inp.cleanLatentIndices, [1, 2, 2]],
      ['cleanLatents2x', inp.cleanLatents2x, 'cleanLatentIndices2x', inp.cleanLatentIndices2x, [2, 4, 4]],
      ['cleanLatents4x', inp.cleanLatents4x, 'cleanLatentIndices4x', inp.cleanLatentIndices4x, [4, 8, 8]],
    ];
    for (const [ln, lat, iname, idx, k] of pairs) {
      if (!lat && !idx) continue;
      if (!lat || !idx) fail(`${lat ? iname : ln} is missing: ${ln} and ${iname} go together`);
      if (!c.hasCleanXEmbedder) fail(`${ln} were given but the model has no clean-latent embedder (has_clean_x_embedder is false)`);
      perBatch(ln, lat, [16, -1, H, W], true);
      const tc = lat!.shape[2];
      perBatch(iname, idx, [tc], true);
      tokens += Math.ceil(tc / k[0]) * Math.ceil(H / k[1]) * Math.ceil(W / k[2]);
    }
    return { B, gridT: nT / c.patchSizeT, gridH: gH, gridW: gW, imageTokens: tokens };
  }
}

interface Shape {
  B: number;
  gridT: number;
  gridH: number;
  gridW: number;
  /** Packed image tokens (noisy + clean groups). */
  imageTokens: number;
}

/** parseConfig takes diffusers (snake_case) and camelCase keys alike, so a DiTConfig passes through it too. */
function toConfig(c: Record<string, unknown> | DiTConfig): DiTConfig {
  return parseConfig(c as unknown as Record<string, unknown>);
}

/** Integer positions per batch row, read on the host (index bookkeeping, not a hot path). */
function indexRows(t: Tensor): number[][] {
  const v = t.toArray();
  const n = t.shape[t.ndim - 1];
  const rows = t.ndim === 1 ? 1 : t.shape[0];
  return Array.from({ length: rows }, (_, b) => v.slice(b * n, (b + 1) * n));
}
function boolRows(m: Tensor): boolean[][] {
  const v = m.toArray();
  const [B, L] = m.shape;
  return Array.from({ length: B }, (_, b) => Array.from({ length: L }, (_, j) => v[b * L + j] !== 0));
}
/** A batch-1 tensor repeated to B rows (shared conditioning), or the tensor itself. */
function expandBatch(t: Tensor, B: number): Tensor {
  return t.shape[0] === B ? t : T.cat(new Array<Tensor>(B).fill(t), 0);
}
