import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { directReaderAs, type TensorSource } from '@framepack/safetensors';
import { resizeImage, type RgbImage, type ResampleFilter } from '@framepack/video-io';
import { EncoderConfigError, EncoderInputError } from './errors.js';
import { activation, type Activation, mergeHeads, preLnLayer, preLnLayerShapes, splitHeads } from './layers.js';
import { mapSource } from './llama.js';
import { type LoadOptions, loadTensors, num, openWeights, posInt, readConfigJson, validateWeights, type WeightSpec } from './weights.js';
import { createLayerStream, layerGroups, type StreamLayersOptions } from './streaming.js';

/** The SiglipVisionConfig fields the encoder uses. */
export interface SiglipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  hiddenAct: string;
  layerNormEps: number;
  /** The attention-pooling head (pooler_output); FramePack uses last_hidden_state only. */
  useHead: boolean;
}

/** Parse a SiglipVisionConfig dict; a full SiglipConfig (with `vision_config`) is accepted too. */
export function parseSiglipVisionConfig(cfg: Record<string, any>, path = 'config'): SiglipVisionConfig {
  const c = cfg.vision_config && typeof cfg.vision_config === 'object' ? cfg.vision_config : cfg;
  const hiddenSize = posInt(c, 'hidden_size', path);
  const numAttentionHeads = posInt(c, 'num_attention_heads', path);
  if (hiddenSize % numAttentionHeads) throw new EncoderConfigError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`, path);
  return {
    hiddenSize,
    intermediateSize: posInt(c, 'intermediate_size', path),
    numHiddenLayers: posInt(c, 'num_hidden_layers', path),
    numAttentionHeads,
    numChannels: posInt(c, 'num_channels', path, 3),
    imageSize: posInt(c, 'image_size', path, 224),
    patchSize: posInt(c, 'patch_size', path, 16),
    hiddenAct: String(c.hidden_act ?? 'gelu_pytorch_tanh'),
    layerNormEps: num(c, 'layer_norm_eps', path, 1e-6),
    useHead: c.vision_use_head === undefined ? true : !!c.vision_use_head,
  };
}

/** Every SiglipVisionTransformer key of this config with its shape (the pooling head only `withHead`). */
export function siglipWeightSpec(c: SiglipVisionConfig, withHead: boolean): WeightSpec {
  const D = c.hiddenSize, P = c.patchSize, n = Math.floor(c.imageSize / P) ** 2;
  const shapes = new Map<string, readonly number[]>([
    ['embeddings.patch_embedding.weight', [D, c.numChannels, P, P]],
    ['embeddings.patch_embedding.bias', [D]],
    ['embeddings.position_embedding.weight', [n, D]],
  ]);
  for (let i = 0; i < c.numHiddenLayers; i++) for (const [k, s] of preLnLayerShapes(`encoder.layers.${i}.`, D, c.intermediateSize)) shapes.set(k, s);
  shapes.set('post_layernorm.weight', [D]);
  shapes.set('post_layernorm.bias', [D]);
  if (withHead) {
    shapes.set('head.probe', [1, 1, D]);
    shapes.set('head.attention.in_proj_weight', [3 * D, D]);
    shapes.set('head.attention.in_proj_bias', [3 * D]);
    shapes.set('head.attention.out_proj.weight', [D, D]);
    shapes.set('head.attention.out_proj.bias', [D]);
    shapes.set('head.layernorm.weight', [D]);
    shapes.set('head.layernorm.bias', [D]);
    shapes.set('head.mlp.fc1.weight', [c.intermediateSize, D]);
    shapes.set('head.mlp.fc1.bias', [c.intermediateSize]);
    shapes.set('head.mlp.fc2.weight', [D, c.intermediateSize]);
    shapes.set('head.mlp.fc2.bias', [D]);
  }
  return {
    what: 'SigLIP vision encoder',
    shapes,
    prefixes: ['', 'vision_model.'],
    ignorable: [/position_ids$/, /^head\./, /^text_model\./, /^logit_scale$/, /^logit_bias$/],
  };
}

/** SiglipImageProcessor settings (preprocessor_config.json); defaults are FramePack's feature_extractor. */
export interface SiglipPreprocess {
  height: number;
  width: number;
  /** PIL resample id (3 = bicubic) or a filter name. */
  resample: ResampleFilter;
  rescaleFactor: number;
  mean: readonly number[];
  std: readonly number[];
  doResize: boolean;
  doRescale: boolean;
  doNormalize: boolean;
}

const PIL_FILTERS: Record<number, ResampleFilter> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

/** Read preprocessor_config.json of a model folder (or use the defaults for `imageSize`). */
export function readSiglipPreprocess(dir: string | null, imageSize: number): SiglipPreprocess {
  const base: SiglipPreprocess = {
    height: imageSize,
    width: imageSize,
    resample: 'bicubic',
    rescaleFactor: 1 / 255,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    doResize: true,
    doRescale: true,
    doNormalize: true,
  };
  const p = dir ? join(dir, 'preprocessor_config.json') : null;
  if (!p || !existsSync(p)) return base;
  let j: Record<string, any>;
  try {
    j = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new EncoderConfigError(`preprocessor_config.json is not valid JSON (${(e as Error).message})`, p);
  }
  const size = j.size ?? {};
  const resample = j.resample === undefined ? base.resample : PIL_FILTERS[j.resample as number];
  if (!resample) throw new EncoderConfigError(`unsupported resample ${JSON.stringify(j.resample)}`, p);
  return {
    height: size.height ?? size.shortest_edge ?? base.height,
    width: size.width ?? size.shortest_edge ?? base.width,
    resample,
    rescaleFactor: j.rescale_factor ?? base.rescaleFactor,
    mean: j.image_mean ?? base.mean,
    std: j.image_std ?? base.std,
    doResize: j.do_resize ?? true,
    doRescale: j.do_rescale ?? true,
    doNormalize: j.do_normalize ?? true,
  };
}

/**
 * SiglipImageProcessor on one RGB u8 image: resize (PIL resampling, aspect not kept), rescale, normalize ->
 * pixel_values (1, 3, H, W) f32.
 */
export function siglipPixelValues(image: RgbImage, pre: SiglipPreprocess, device: T.DeviceType = 'cpu'): T.Tensor {
  const img = pre.doResize && (image.width !== pre.width || image.height !== pre.height) ? resizeImage(image, pre.width, pre.height, pre.resample) : image;
  const { width: W, height: H, data } = img;
  const out = new Float32Array(3 * H * W);
  for (let ch = 0; ch < 3; ch++) {
    // rescale in float64 then store f32 (numpy), normalize in f32.
    const m = Math.fround(pre.mean[ch]), s = Math.fround(pre.std[ch]);
    for (let i = 0; i < H * W; i++) {
      let v = data[i * 3 + ch];
      if (pre.doRescale) v = Math.fround(v * pre.rescaleFactor);
      if (pre.doNormalize) v = Math.fround(Math.fround(v - m) / s);
      out[ch * H * W + i] = v;
    }
  }
  return T.tensor(out, [1, 3, H, W], { device });
}

/** SigLIP vision tower (transformers SiglipVisionModel): patch conv + learned positions, pre-LN encoder, post-LN. */
export class SiglipVisionEncoder {
  readonly act: Activation;
  /** Closes the checkpoint a 'source'-mode streamer reads from (set by `load`). */
  #closeSource: (() => void) | null = null;
  private constructor(
    readonly config: SiglipVisionConfig,
    private readonly w: Map<string, T.Tensor>,
    /** Preprocessing from the folder's preprocessor_config.json (defaults: FramePack's). */
    readonly preprocess: SiglipPreprocess,
    /** Streamed encoder layers (low VRAM), or null when every layer is resident in `w`. */
    readonly streamer: T.WeightStreamer | null = null,
  ) {
    this.act = activation(config.hiddenAct, 'config.hidden_act');
  }

  /**
   * Load a transformers-format folder. The pooling head is loaded only with `withHead` (FramePack never uses
   * it); its keys are accepted and skipped otherwise. With `streamLayers` the encoder layers stay in host memory
   * (pinned on CUDA) and pass through `slots` device buffers.
   */
  static load(dir: string, opts: SiglipLoadOptions & { preprocessDir?: string } = {}): SiglipVisionEncoder {
    const config = parseSiglipVisionConfig(readConfigJson(dir), `${dir}/config.json`);
    const src = openWeights(dir);
    let keepOpen = false;
    try {
      const enc = SiglipVisionEncoder.fromSource(config, src, dir, opts);
      const out = new SiglipVisionEncoder(config, enc.w, readSiglipPreprocess(opts.preprocessDir ?? dir, config.imageSize), enc.streamer);
      // 'source' streaming reads the layers from the checkpoint on every pass: it stays open until dispose
      keepOpen = opts.streamLayers?.hostCopy === 'source';
      if (keepOpen) out.#closeSource = () => src.close();
      return out;
    } finally {
      if (!keepOpen) src.close();
    }
  }
  static fromSource(config: SiglipVisionConfig, src: TensorSource, sourceName: string, opts: SiglipLoadOptions = {}): SiglipVisionEncoder {
    const spec = siglipWeightSpec(config, !!opts.withHead && config.useHead);
    const prefix = validateWeights(src, spec, sourceName);
    const pre = readSiglipPreprocess(null, config.imageSize);
    const keys = [...spec.shapes.keys()];
    if (!opts.streamLayers) return new SiglipVisionEncoder(config, loadTensors(src, prefix, keys, opts), pre);
    const dtype = opts.dtype ?? 'f32';
    const streamer = createLayerStream(layerGroups(keys, spec.shapes, LAYER_KEY, 'encoder.layers'), (k) => src.tensor(prefix + k, { dtype, device: 'cpu' }), {
      dtype, device: opts.device ?? 'cpu', readDirect: directReaderAs(src, dtype, prefix), ...opts.streamLayers,
    });
    try {
      return new SiglipVisionEncoder(config, loadTensors(src, prefix, keys.filter((k) => !LAYER_KEY.test(k)), opts), pre, streamer);
    } catch (e) {
      streamer.dispose();
      throw e;
    }
  }
  /** From a config dict and tensors (used as given; with `streamLayers` the layers are copied into host buffers). */
  static fromWeights(config: Record<string, any> | SiglipVisionConfig, weights: Record<string, T.Tensor> | Map<string, T.Tensor>, opts: { withHead?: boolean; streamLayers?: StreamLayersOptions } = {}): SiglipVisionEncoder {
    const c = 'hiddenSize' in config ? (config as SiglipVisionConfig) : parseSiglipVisionConfig(config);
    const m = weights instanceof Map ? weights : new Map(Object.entries(weights));
    const spec = siglipWeightSpec(c, !!opts.withHead && c.useHead);
    const prefix = validateWeights(mapSource(m), spec, 'weights');
    const keys = [...spec.shapes.keys()];
    const pre = readSiglipPreprocess(null, c.imageSize);
    if (!opts.streamLayers) return new SiglipVisionEncoder(c, new Map(keys.map((k) => [k, m.get(prefix + k)!])), pre);
    const ref = m.get(prefix + 'post_layernorm.weight')!;
    const streamer = createLayerStream(layerGroups(keys, spec.shapes, LAYER_KEY, 'encoder.layers'), (k) => T.reshape(m.get(prefix + k)!, m.get(prefix + k)!.shape), {
      dtype: ref.dtype, device: ref.device, ...opts.streamLayers,
    });
    return new SiglipVisionEncoder(c, new Map(keys.filter((k) => !LAYER_KEY.test(k)).map((k) => [k, m.get(prefix + k)!])), pre, streamer);
  }

  get dtype(): T.DType {
    return this.w.get('post_layernorm.weight')!.dtype;
  }
  get device(): T.DeviceType {
    return this.w.get('post_layernorm.weight')!.device;
  }
  get hasHead(): boolean {
    return this.w.has('head.probe');
  }

  /** last_hidden_state (B, numPatches, hidden) from pixel_values (B, C, imageSize, imageSize). */
  forward(pixelValues: T.Tensor): T.Tensor {
    const c = this.config;
    if (pixelValues.ndim !== 4 || pixelValues.shape[1] !== c.numChannels) throw new EncoderInputError(`pixel_values must be (batch, ${c.numChannels}, H, W), got [${pixelValues.shape}]`);
    const [B, , H, W] = pixelValues.shape;
    const grid = Math.floor(c.imageSize / c.patchSize);
    if (Math.floor(H / c.patchSize) !== grid || Math.floor(W / c.patchSize) !== grid)
      throw new EncoderInputError(`pixel_values of ${H}x${W} give a ${Math.floor(H / c.patchSize)}x${Math.floor(W / c.patchSize)} patch grid; the position embedding is for ${c.imageSize}x${c.imageSize} (${grid}x${grid} patches)`);
    let h = T.tidy(() => {
      const x = T.cast(T.toDevice(pixelValues, this.device), this.dtype);
      // Conv with kernel = stride = patch (trailing rows/cols beyond the grid are ignored), tokens row-major.
      const pe = T.conv2d(x, this.w.get('embeddings.patch_embedding.weight')!, this.w.get('embeddings.patch_embedding.bias')!, { stride: c.patchSize });
      const tokens = T.transpose(T.reshape(pe, [B, c.hiddenSize, grid * grid]), 1, 2);
      return T.add(tokens, this.w.get('embeddings.position_embedding.weight')!);
    });
    try {
      for (let i = 0; i < c.numHiddenLayers; i++) {
        const prefix = `encoder.layers.${i}.`;
        const w = this.streamer ? this.streamer.acquire(`encoder.layers.${i}`) : this.w;
        const next = preLnLayer(h, (n) => w.get(prefix + n)!, c.numAttentionHeads, c.layerNormEps, this.act);
        // the layer's kernels are queued: its slot may be refilled once they have run
        this.streamer?.release(`encoder.layers.${i}`);
        h.dispose();
        h = next;
      }
      return T.layerNorm(h, this.w.get('post_layernorm.weight')!, this.w.get('post_layernorm.bias')!, c.layerNormEps);
    } finally {
      h.dispose();
      this.streamer?.releaseAll();
    }
  }

  /** pooler_output (B, hidden) of the attention-pooling head from last_hidden_state (needs `withHead`). */
  pool(lastHiddenState: T.Tensor): T.Tensor {
    if (!this.hasHead) throw new EncoderConfigError('this encoder was loaded without its pooling head; load it with { withHead: true }');
    const c = this.config, D = c.hiddenSize;
    const g = (n: string) => this.w.get(`head.${n}`)!;
    const B = lastHiddenState.shape[0];
    return T.tidy(() => {
      const [wq, wk, wv] = T.split(g('attention.in_proj_weight'), D, 0);
      const [bq, bk, bv] = T.split(g('attention.in_proj_bias'), D, 0);
      const probe = T.cat(Array.from({ length: B }, () => g('probe')), 0); // (B, 1, D)
      const q = splitHeads(T.linear(probe, wq, bq), c.numAttentionHeads);
      const k = splitHeads(T.linear(lastHiddenState, wk, bk), c.numAttentionHeads);
      const v = splitHeads(T.linear(lastHiddenState, wv, bv), c.numAttentionHeads);
      const a = T.linear(mergeHeads(T.scaledDotProductAttention(q, k, v)), g('attention.out_proj.weight'), g('attention.out_proj.bias'));
      const n = T.layerNorm(a, g('layernorm.weight'), g('layernorm.bias'), c.layerNormEps);
      const m = T.linear(this.act(T.linear(n, g('mlp.fc1.weight'), g('mlp.fc1.bias'))), g('mlp.fc2.weight'), g('mlp.fc2.bias'));
      return T.reshape(T.add(a, m), [B, D]);
    });
  }

  /** FramePack's hf_clip_vision_encode: preprocess one RGB u8 image and return last_hidden_state (1, N, hidden). */
  encodeImage(image: RgbImage): T.Tensor {
    const px = siglipPixelValues(image, this.preprocess, this.device);
    try {
      return this.forward(px);
    } finally {
      px.dispose();
    }
  }

  dispose(): void {
    for (const t of this.w.values()) t.dispose();
    this.w.clear();
    this.streamer?.dispose();
    this.#closeSource?.();
    this.#closeSource = null;
  }
}

export interface SiglipLoadOptions extends LoadOptions {
  /** Load the attention-pooling head (pooler_output; FramePack does not use it). */
  withHead?: boolean;
  /** Stream the encoder layers through device slots (low VRAM). */
  streamLayers?: StreamLayersOptions;
}

const LAYER_KEY = /^encoder\.layers\.(\d+)\./;
