import { VaeConfigError } from './errors.js';

/** AutoencoderKLHunyuanVideo constructor arguments (diffusers 0.33.1), camel-cased. */
export interface HunyuanVideoVaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  downBlockTypes: string[];
  upBlockTypes: string[];
  blockOutChannels: number[];
  layersPerBlock: number;
  actFn: string;
  normNumGroups: number;
  scalingFactor: number;
  spatialCompressionRatio: number;
  temporalCompressionRatio: number;
  midBlockAddAttention: boolean;
}

/** The class defaults, which are also hunyuanvideo-community/HunyuanVideo vae/config.json. */
export const HUNYUAN_VIDEO_VAE_CONFIG: Readonly<HunyuanVideoVaeConfig> = Object.freeze({
  inChannels: 3,
  outChannels: 3,
  latentChannels: 16,
  downBlockTypes: Array(4).fill('HunyuanVideoDownBlock3D'),
  upBlockTypes: Array(4).fill('HunyuanVideoUpBlock3D'),
  blockOutChannels: [128, 256, 512, 512],
  layersPerBlock: 2,
  actFn: 'silu',
  normNumGroups: 32,
  scalingFactor: 0.476986,
  spatialCompressionRatio: 8,
  temporalCompressionRatio: 4,
  midBlockAddAttention: true,
});

const SNAKE: Record<keyof HunyuanVideoVaeConfig, string> = {
  inChannels: 'in_channels',
  outChannels: 'out_channels',
  latentChannels: 'latent_channels',
  downBlockTypes: 'down_block_types',
  upBlockTypes: 'up_block_types',
  blockOutChannels: 'block_out_channels',
  layersPerBlock: 'layers_per_block',
  actFn: 'act_fn',
  normNumGroups: 'norm_num_groups',
  scalingFactor: 'scaling_factor',
  spatialCompressionRatio: 'spatial_compression_ratio',
  temporalCompressionRatio: 'temporal_compression_ratio',
  midBlockAddAttention: 'mid_block_add_attention',
};

/**
 * Read a diffusers config.json object (snake_case; `_class_name`, `_diffusers_version` and other keys
 * are ignored). Absent keys take the class defaults, exactly like `from_pretrained`.
 */
export function configFromDiffusers(json: Record<string, unknown>): HunyuanVideoVaeConfig {
  if (json === null || typeof json !== 'object') throw new VaeConfigError('config.json must hold a JSON object');
  const cls = json._class_name;
  if (cls !== undefined && cls !== 'AutoencoderKLHunyuanVideo') throw new VaeConfigError(`config.json describes a ${String(cls)}, not an AutoencoderKLHunyuanVideo`);
  const out = { ...HUNYUAN_VIDEO_VAE_CONFIG } as HunyuanVideoVaeConfig;
  for (const [k, snake] of Object.entries(SNAKE) as [keyof HunyuanVideoVaeConfig, string][]) {
    if (json[snake] !== undefined) (out as unknown as Record<string, unknown>)[k] = json[snake];
  }
  return validateConfig(out);
}

/** One encoder down block: resnets then an optional strided causal conv. */
export interface DownBlockPlan {
  inChannels: number;
  outChannels: number;
  numLayers: number;
  /** (t, h, w) stride of the downsampler, or null when the block has none. */
  downsampleStride: [number, number, number] | null;
}
/** One decoder up block: resnets then an optional (causal) nearest upsampler + conv. */
export interface UpBlockPlan {
  inChannels: number;
  outChannels: number;
  numLayers: number;
  upsampleFactor: [number, number, number] | null;
}
export interface VaeLayout {
  down: DownBlockPlan[];
  up: UpBlockPlan[];
}

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** Check a config (throws VaeConfigError naming the field) and return it. */
export function validateConfig(c: HunyuanVideoVaeConfig): HunyuanVideoVaeConfig {
  for (const k of ['inChannels', 'outChannels', 'latentChannels', 'layersPerBlock', 'normNumGroups', 'spatialCompressionRatio', 'temporalCompressionRatio'] as const) {
    if (!isPosInt(c[k])) throw new VaeConfigError(`${SNAKE[k]} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (!Array.isArray(c.blockOutChannels) || c.blockOutChannels.length === 0 || !c.blockOutChannels.every(isPosInt))
    throw new VaeConfigError(`block_out_channels must be a non-empty list of positive integers, got ${JSON.stringify(c.blockOutChannels)}`);
  const n = c.blockOutChannels.length;
  for (const [k, want] of [['downBlockTypes', 'HunyuanVideoDownBlock3D'], ['upBlockTypes', 'HunyuanVideoUpBlock3D']] as const) {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== n) throw new VaeConfigError(`${SNAKE[k]} must list ${n} blocks (one per block_out_channels entry), got ${JSON.stringify(v)}`);
    const bad = v.find((t) => t !== want);
    if (bad !== undefined) throw new VaeConfigError(`unsupported ${SNAKE[k]} entry '${bad}' (only ${want})`);
  }
  if (c.actFn !== 'silu' && c.actFn !== 'swish') throw new VaeConfigError(`act_fn '${c.actFn}' is not supported (silu / swish)`);
  for (const ch of c.blockOutChannels)
    if (ch % c.normNumGroups) throw new VaeConfigError(`block_out_channels entry ${ch} does not split into norm_num_groups=${c.normNumGroups} groups`);
  if (typeof c.scalingFactor !== 'number' || !Number.isFinite(c.scalingFactor) || c.scalingFactor === 0) throw new VaeConfigError(`scaling_factor must be a non-zero number, got ${c.scalingFactor}`);
  if (typeof c.midBlockAddAttention !== 'boolean') throw new VaeConfigError('mid_block_add_attention must be a boolean');
  const s = Math.log2(c.spatialCompressionRatio);
  if (!Number.isInteger(s) || s > n) throw new VaeConfigError(`spatial_compression_ratio ${c.spatialCompressionRatio} must be 2^k with k <= ${n} (the number of blocks)`);
  if (c.temporalCompressionRatio !== 4) throw new VaeConfigError(`temporal_compression_ratio ${c.temporalCompressionRatio} is not supported: the HunyuanVideo decoder only builds ratio 4`);
  if (n < 3) throw new VaeConfigError(`temporal_compression_ratio 4 needs at least 3 blocks, got ${n}`);
  return c;
}

/** The block structure the reference constructors derive from the config. */
export function vaeLayout(c: HunyuanVideoVaeConfig): VaeLayout {
  const n = c.blockOutChannels.length;
  const sLayers = Math.log2(c.spatialCompressionRatio);
  const tLayers = Math.log2(c.temporalCompressionRatio);
  const down: DownBlockPlan[] = [];
  let prev = c.blockOutChannels[0];
  for (let i = 0; i < n; i++) {
    const out = c.blockOutChannels[i];
    const isFinal = i === n - 1;
    // ratio 4: time downsampling in the last tLayers blocks before the final one
    const sp = i < sLayers;
    const tm = i >= n - 1 - tLayers && !isFinal;
    down.push({ inChannels: prev, outChannels: out, numLayers: c.layersPerBlock, downsampleStride: sp || tm ? [tm ? 2 : 1, sp ? 2 : 1, sp ? 2 : 1] : null });
    prev = out;
  }
  const rev = [...c.blockOutChannels].reverse();
  const up: UpBlockPlan[] = [];
  prev = rev[0];
  for (let i = 0; i < n; i++) {
    const out = rev[i];
    const isFinal = i === n - 1;
    const sp = i < sLayers;
    const tm = i >= n - 1 - tLayers && !isFinal;
    up.push({ inChannels: prev, outChannels: out, numLayers: c.layersPerBlock + 1, upsampleFactor: sp || tm ? [tm ? 2 : 1, sp ? 2 : 1, sp ? 2 : 1] : null });
    prev = out;
  }
  const tDown = down.reduce((p, b) => p * (b.downsampleStride?.[0] ?? 1), 1);
  if (tDown !== c.temporalCompressionRatio) throw new VaeConfigError(`the block layout compresses time by ${tDown}, not temporal_compression_ratio=${c.temporalCompressionRatio}`);
  return { down, up };
}
