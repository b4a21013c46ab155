/**
 * AutoencoderKLHunyuanVideo (diffusers 0.33.1) with FramePack's latent scaling at the boundary:
 * `encode` returns latents multiplied by the scaling factor (FramePack's `vae_encode`), and `decode` takes such
 * scaled latents and divides by the scaling factor first (FramePack's `vae_decode`). The raw posterior
 * (mean, logvar) is returned unscaled.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import { openCheckpoint } from '@framepack/safetensors';
import { configFromDiffusers, HUNYUAN_VIDEO_VAE_CONFIG, type HunyuanVideoVaeConfig, validateConfig, type VaeLayout, vaeLayout } from './config.js';
import { decodeLatents, encodeMoments } from './encoder-decoder.js';
import { VaeConfigError, VaeInputError } from './errors.js';
import { previewRgb } from './preview.js';
import {
  DEFAULT_TILING,
  type RegionSink,
  resolveTiling,
  type SpatialPlan,
  spatialTiles,
  type TemporalPlan,
  temporalTiles,
  type TilingOptions,
  validateTiling,
} from './tiling.js';
import { loadWeights, readPretrained, type VaeWeights } from './weights.js';

export interface VaeLoadOptions {
  device?: DeviceType;
  /** Weight and activation dtype (default f32; FramePack runs the VAE in f16). */
  dtype?: DType;
  /**
   * Config for a single .safetensors file (a folder brings its own config.json; a file with a config.json beside
   * it uses that; otherwise the HunyuanVideo defaults).
   */
  config?: HunyuanVideoVaeConfig;
}

export interface DecodeOptions {
  /**
   * Omitted: the VAE's current tiling (by default the reference's: temporal tiles only). An object: like
   * diffusers' `enable_tiling(...)` for this call (spatial + temporal tiles, given sizes over the defaults).
   * `false`: one pass over everything.
   */
  tiling?: Partial<TilingOptions> | false;
  /** Decode every latent frame on its own (FramePack's `vae_decode(..., image_mode=True)`): T latents -> T frames. */
  imageMode?: boolean;
}

export interface EncodeOptions {
  tiling?: Partial<TilingOptions> | false;
  /**
   * Draw the posterior sample: called with the latent shape, returns standard-normal noise (e.g. a k-diffusion
   * torch-compatible generator's randn). Omitted: `latents` is the posterior mean (the deterministic choice).
   */
  sample?: (shape: number[]) => Tensor;
}

/** The posterior of an encode. The caller owns (and disposes) all three tensors. */
export interface VaeEncoding {
  /** Posterior mean, unscaled (B, latent, t, h, w). */
  mean: Tensor;
  /** Posterior log-variance, clamped to [-30, 20] as the reference does. */
  logvar: Tensor;
  /** (sample or mean) x scaling factor: what FramePack feeds to the DiT. */
  latents: Tensor;
}

const FLOAT: readonly DType[] = ['f32', 'f16', 'bf16'];

export class HunyuanVideoVae {
  readonly layout: VaeLayout;
  /** Tiling used when a call passes none (see `enableTiling`). */
  tiling: TilingOptions = { ...DEFAULT_TILING };
  #weights: VaeWeights | null;

  private constructor(
    readonly config: HunyuanVideoVaeConfig,
    weights: VaeWeights,
    readonly device: DeviceType,
    readonly dtype: DType,
  ) {
    this.layout = vaeLayout(config);
    this.#weights = weights;
  }

  /**
   * Load a diffusers VAE folder (config.json + diffusion_pytorch_model.safetensors or a sharded index), or a
   * single .safetensors file. Every key and shape is checked before any tensor is read.
   */
  static load(dirOrFile: string, opts: VaeLoadOptions = {}): HunyuanVideoVae {
    const dtype = opts.dtype ?? 'f32';
    const device = opts.device ?? 'cpu';
    if (!FLOAT.includes(dtype)) throw new VaeConfigError(`VAE dtype must be one of ${FLOAT.join(', ')}, got ${dtype}`);
    if (!existsSync(dirOrFile)) throw new VaeConfigError(`${dirOrFile} does not exist; pass the diffusers VAE folder (config.json + safetensors) or a .safetensors file`);
    let config = opts.config ? validateConfig({ ...opts.config }) : undefined;
    if (statSync(dirOrFile).isDirectory() && !config) {
      const { config: fromJson, weights } = readPretrained(dirOrFile, { dtype, device });
      return new HunyuanVideoVae(fromJson, weights, device, dtype);
    }
    const beside = join(dirname(dirOrFile), 'config.json');
    if (!config && existsSync(beside)) {
      try {
        config = configFromDiffusers(JSON.parse(readFileSync(beside, 'utf8')));
      } catch (e) {
        if (e instanceof VaeConfigError) throw e;
        throw new VaeConfigError(`${beside} is not valid JSON (${(e as Error).message})`);
      }
    }
    config ??= { ...HUNYUAN_VIDEO_VAE_CONFIG };
    const source = openCheckpoint(dirOrFile);
    try {
      return new HunyuanVideoVae(config, loadWeights(source, config, dirOrFile, { dtype, device }), device, dtype);
    } finally {
      source.close();
    }
  }

  /** Build from tensors already in memory (names as in the diffusers state dict); the map is taken over. */
  static fromWeights(config: HunyuanVideoVaeConfig, weights: Map<string, Tensor>): HunyuanVideoVae {
    const c = validateConfig({ ...config });
    const source = {
      keys: () => [...weights.keys()],
      has: (k: string) => weights.has(k),
      info: (k: string) => ({ dtype: 'F32' as const, shape: [...weights.get(k)!.shape], begin: 0, end: 0 }),
      tensor: (k: string) => weights.get(k)!,
      close: () => {},
    };
    const first = weights.values().next().value as Tensor | undefined;
    const w = loadWeights(source, c, 'fromWeights', {});
    const dtype = first?.dtype ?? 'f32';
    for (const t of w.values()) if (t.dtype !== dtype || t.device !== first!.device) throw new VaeConfigError('fromWeights: every weight must have the same dtype and device');
    return new HunyuanVideoVae(c, w, first?.device ?? 'cpu', dtype);
  }

  get scalingFactor(): number {
    return this.config.scalingFactor;
  }

  /** Like diffusers' `enable_tiling(...)`: spatial tiling on for later calls (sizes over the defaults). */
  enableTiling(opts: Partial<Omit<TilingOptions, 'spatial'>> = {}): void {
    this.tiling = this.#tiling(opts);
  }
  disableTiling(): void {
    this.tiling = { ...this.tiling, spatial: false };
  }

  /** Free the weights; the VAE cannot be used afterwards. */
  dispose(): void {
    if (this.#weights) for (const t of this.#weights.values()) t.dispose();
    this.#weights = null;
  }

  /**
   * Latents (B, latent, T, h, w) scaled by the scaling factor (as FramePack holds them) -> pixels
   * (B, 3, 4(T-1)+1, 8h, 8w) in about [-1, 1], in the VAE's dtype on its device.
   */
  decode(latents: Tensor, opts: DecodeOptions = {}): Tensor {
    const c = this.config;
    this.#checkInput(latents, 'decode', c.latentChannels, 'latents');
    const tiling = this.#tiling(opts.tiling);
    const [B, , Tn, h, w] = latents.shape;
    const sr = c.spatialCompressionRatio;
    const z = this.#prepare(latents, (x) => T.div(x, c.scalingFactor));
    const out = T.zeros([B, c.outChannels, opts.imageMode ? Tn : this.#decodedFrames(Tn), h * sr, w * sr], { dtype: this.dtype, device: this.device });
    try {
      if (opts.imageMode) {
        for (let f = 0; f < Tn; f++) {
          const zf = T.slice(z, 2, f, f + 1);
          try {
            this.#decodeInto(zf, tiling, out, f);
          } finally {
            zf.dispose();
          }
        }
      } else this.#decodeInto(z, tiling, out, 0);
    } catch (e) {
      out.dispose();
      throw e;
    } finally {
      z.dispose();
    }
    return out;
  }

  /**
   * Pixels (B, 3, F, H, W) in [-1, 1] (H, W multiples of 8) -> the posterior over (B, latent, (F-1)//4+1, H/8, W/8).
   * `latents` = (sample or mean) x scaling factor.
   */
  encode(pixels: Tensor, opts: EncodeOptions = {}): VaeEncoding {
    const c = this.config;
    this.#checkInput(pixels, 'encode', c.inChannels, 'pixels');
    const [B, , F, H, W] = pixels.shape;
    const sr = c.spatialCompressionRatio;
    if (H % sr || W % sr) throw new VaeInputError(`encode: height and width must be multiples of ${sr}, got ${H}x${W}`);
    const tiling = this.#tiling(opts.tiling);
    const x = this.#prepare(pixels);
    const moments = T.zeros([B, 2 * c.latentChannels, this.#encodedFrames(F), H / sr, W / sr], { dtype: this.dtype, device: this.device });
    try {
      this.#encodeInto(x, tiling, moments);
    } catch (e) {
      moments.dispose();
      throw e;
    } finally {
      x.dispose();
    }
    const result = T.tidy(() => {
      const mean = T.clone(T.slice(moments, 1, 0, c.latentChannels));
      const logvar = T.clamp(T.slice(moments, 1, c.latentChannels), -30, 20);
      let z = mean;
      if (opts.sample) {
        const raw = opts.sample([...mean.shape]);
        if (!raw || !(raw as Tensor).__isTensor || raw.shape.length !== mean.ndim || raw.shape.some((d, i) => d !== mean.shape[i]))
          throw new VaeInputError(`encode: sample(shape) must return a tensor of shape [${mean.shape}], got ${raw?.shape ? `[${raw.shape}]` : String(raw)}`);
        const noise = T.toDevice(T.cast(raw, this.dtype), this.device);
        z = T.add(mean, T.mul(T.exp(T.mul(logvar, 0.5)), noise));
      }
      return { mean, logvar, latents: T.mul(z, c.scalingFactor) };
    });
    moments.dispose();
    return result;
  }

  /** FramePack's latent -> RGB preview (`vae_decode_fake`) of scaled latents: (B, 3, T, h, w) in [0, 1]. */
  previewRgb(latents: Tensor): Tensor {
    return previewRgb(latents);
  }

  // ------------------------------------------------------------------------------------------- internals

  #w(): VaeWeights {
    if (!this.#weights) throw new VaeConfigError('this VAE was disposed');
    return this.#weights;
  }

  #tiling(opt: Partial<TilingOptions> | false | undefined): TilingOptions {
    return validateTiling(resolveTiling(opt, this.tiling), this.config.spatialCompressionRatio, this.config.temporalCompressionRatio);
  }

  #checkInput(x: Tensor, op: string, channels: number, what: string): void {
    if (!x || !(x as Tensor).__isTensor) throw new VaeInputError(`${op}: ${what} must be a Tensor`);
    if (x.ndim !== 5) throw new VaeInputError(`${op}: ${what} must be (B, ${channels}, T, H, W), got [${x.shape}]`);
    if (x.shape[1] !== channels) throw new VaeInputError(`${op}: ${what} must have ${channels} channels, got [${x.shape}]`);
    if (!FLOAT.includes(x.dtype)) throw new VaeInputError(`${op}: ${what} must be floating point, got ${x.dtype}`);
    if (x.shape.some((d) => d < 1)) throw new VaeInputError(`${op}: ${what} has an empty dim: [${x.shape}]`);
    this.#w();
  }

  /** Input on the VAE's device and dtype, after an optional op in the input's own dtype. */
  #prepare(x: Tensor, pre?: (x: Tensor) => Tensor): Tensor {
    return T.tidy(() => {
      const y = pre ? pre(x) : x;
      return T.toDevice(T.cast(y, this.dtype), this.device); // may be a view of x: it is only read
    });
  }

  /** Output frames of the decoder for n latent frames (each temporal upsampler maps n -> 1 + f(n-1)). */
  #decodedFrames(n: number): number {
    return this.layout.up.reduce((t, b) => (b.upsampleFactor ? 1 + b.upsampleFactor[0] * (t - 1) : t), n);
  }
  /** Latent frames of the encoder for n pixel frames (each strided causal conv maps n -> (n-1)//s + 1). */
  #encodedFrames(n: number): number {
    return this.layout.down.reduce((t, b) => (b.downsampleStride ? Math.floor((t - 1) / b.downsampleStride[0]) + 1 : t), n);
  }

  #decodeWhole = (z: Tensor): Tensor => decodeLatents(z, this.#w(), this.config, this.layout);
  #encodeWhole = (x: Tensor): Tensor => encodeMoments(x, this.#w(), this.config, this.layout);

  /** `_decode` of diffusers 0.33.1 into `out` at `frameOffset`. */
  #decodeInto(z: Tensor, t: TilingOptions, out: Tensor, frameOffset: number): void {
    const sr = this.config.spatialCompressionRatio, tr = this.config.temporalCompressionRatio;
    const [, , Tn, h, w] = z.shape;
    const latMinH = Math.floor(t.tileSampleMinHeight / sr), latMinW = Math.floor(t.tileSampleMinWidth / sr);
    const latMinT = Math.floor(t.tileSampleMinNumFrames / tr);
    const spatial: SpatialPlan = {
      tile: [latMinH, latMinW],
      step: [Math.floor(t.tileSampleStrideHeight / sr), Math.floor(t.tileSampleStrideWidth / sr)],
      keep: [t.tileSampleStrideHeight, t.tileSampleStrideWidth],
      blend: [t.tileSampleMinHeight - t.tileSampleStrideHeight, t.tileSampleMinWidth - t.tileSampleStrideWidth],
      out: [h * sr, w * sr],
    };
    const whole = (tile: Tensor, sink: RegionSink) => this.#whole(tile, this.#decodeWhole, sink);
    const tiled = (tile: Tensor, sink: RegionSink) => spatialTiles(tile, spatial, this.#decodeWhole, sink);
    const frames = (n: number) => this.#decodedFrames(n);
    if (t.temporal && Tn > latMinT) {
      const plan: TemporalPlan = {
        tile: latMinT + 1,
        step: Math.floor(t.tileSampleStrideNumFrames / tr),
        keepFirst: t.tileSampleStrideNumFrames + 1,
        keep: t.tileSampleStrideNumFrames,
        blend: t.tileSampleMinNumFrames - t.tileSampleStrideNumFrames,
        out: frames(Tn),
      };
      // Per temporal tile, spatial tiling when that tile exceeds the (latent) minimum tile size.
      const per = (tile: Tensor, sink: RegionSink) => (t.spatial && (tile.shape[4] > latMinW || tile.shape[3] > latMinH) ? tiled : whole)(tile, sink);
      temporalTiles(z, plan, frames, per, out, frameOffset);
      return;
    }
    // diffusers 0.33.1 compares the width with tile_sample_stride_width // 8 here (not the minimum width).
    const spatialOn = t.spatial && (w > Math.floor(t.tileSampleStrideWidth / sr) || h > latMinH);
    temporalTiles(z, null, frames, spatialOn ? tiled : whole, out, frameOffset);
  }

  /** `_encode` of diffusers 0.33.1 into `moments`. */
  #encodeInto(x: Tensor, t: TilingOptions, moments: Tensor): void {
    const sr = this.config.spatialCompressionRatio, tr = this.config.temporalCompressionRatio;
    const [, , F, H, W] = x.shape;
    const latStrideH = Math.floor(t.tileSampleStrideHeight / sr), latStrideW = Math.floor(t.tileSampleStrideWidth / sr);
    const spatial: SpatialPlan = {
      tile: [t.tileSampleMinHeight, t.tileSampleMinWidth],
      step: [t.tileSampleStrideHeight, t.tileSampleStrideWidth],
      keep: [latStrideH, latStrideW],
      blend: [Math.floor(t.tileSampleMinHeight / sr) - latStrideH, Math.floor(t.tileSampleMinWidth / sr) - latStrideW],
      out: [Math.floor(H / sr), Math.floor(W / sr)],
    };
    const whole = (tile: Tensor, sink: RegionSink) => this.#whole(tile, this.#encodeWhole, sink);
    const tiled = (tile: Tensor, sink: RegionSink) => spatialTiles(tile, spatial, this.#encodeWhole, sink);
    const spatialOn = t.spatial && (W > t.tileSampleMinWidth || H > t.tileSampleMinHeight);
    const frames = (n: number) => this.#encodedFrames(n);
    if (t.temporal && F > t.tileSampleMinNumFrames) {
      const latStrideT = Math.floor(t.tileSampleStrideNumFrames / tr);
      const plan: TemporalPlan = {
        tile: t.tileSampleMinNumFrames + 1,
        step: t.tileSampleStrideNumFrames,
        keepFirst: latStrideT + 1,
        keep: latStrideT,
        blend: Math.floor(t.tileSampleMinNumFrames / tr) - latStrideT,
        out: frames(F),
      };
      temporalTiles(x, plan, frames, spatialOn ? tiled : whole, moments);
      return;
    }
    temporalTiles(x, null, frames, spatialOn ? tiled : whole, moments);
  }

  #whole(tile: Tensor, f: (x: Tensor) => Tensor, sink: RegionSink): void {
    const y = f(tile);
    try {
      sink(y, 0, 0);
    } finally {
      y.dispose();
    }
  }
}
