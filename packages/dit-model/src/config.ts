import { readFileSync } from 'node:fs';
import { DiTConfigError } from './errors.js';

/**
 * The constructor arguments of HunyuanVideoTransformer3DModelPacked (diffusers config.json), camelCased.
 * Defaults are the reference class defaults; the released FramePack checkpoints additionally set
 * hasImageProj and hasCleanXEmbedder.
 */
export interface DiTConfig {
  inChannels: number;
  outChannels: number;
  numAttentionHeads: number;
  attentionHeadDim: number;
  /** Dual-stream blocks. */
  numLayers: number;
  /** Single-stream blocks. */
  numSingleLayers: number;
  numRefinerLayers: number;
  mlpRatio: number;
  patchSize: number;
  patchSizeT: number;
  qkNorm: 'rms_norm';
  /** Kept for fidelity: the packed class always has a guidance embedder whatever this says. */
  guidanceEmbeds: boolean;
  textEmbedDim: number;
  pooledProjectionDim: number;
  ropeTheta: number;
  /** (T, Y, X) split of the head dim. */
  ropeAxesDim: [number, number, number];
  hasImageProj: boolean;
  imageProjDim: number;
  hasCleanXEmbedder: boolean;
}

export const DEFAULT_CONFIG: Readonly<DiTConfig> = Object.freeze<DiTConfig>({
  inChannels: 16,
  outChannels: 16,
  numAttentionHeads: 24,
  attentionHeadDim: 128,
  numLayers: 20,
  numSingleLayers: 40,
  numRefinerLayers: 2,
  mlpRatio: 4.0,
  patchSize: 2,
  patchSizeT: 1,
  qkNorm: 'rms_norm',
  guidanceEmbeds: true,
  textEmbedDim: 4096,
  pooledProjectionDim: 768,
  ropeTheta: 256.0,
  ropeAxesDim: [16, 56, 56],
  hasImageProj: false,
  imageProjDim: 1152,
  hasCleanXEmbedder: false,
});

/** diffusers key -> our field. */
const KEYS: Record<string, keyof DiTConfig> = {
  in_channels: 'inChannels',
  out_channels: 'outChannels',
  num_attention_heads: 'numAttentionHeads',
  attention_head_dim: 'attentionHeadDim',
  num_layers: 'numLayers',
  num_single_layers: 'numSingleLayers',
  num_refiner_layers: 'numRefinerLayers',
  mlp_ratio: 'mlpRatio',
  patch_size: 'patchSize',
  patch_size_t: 'patchSizeT',
  qk_norm: 'qkNorm',
  guidance_embeds: 'guidanceEmbeds',
  text_embed_dim: 'textEmbedDim',
  pooled_projection_dim: 'pooledProjectionDim',
  rope_theta: 'ropeTheta',
  rope_axes_dim: 'ropeAxesDim',
  has_image_proj: 'hasImageProj',
  image_proj_dim: 'imageProjDim',
  has_clean_x_embedder: 'hasCleanXEmbedder',
};

const INT_FIELDS: (keyof DiTConfig)[] = [
  'inChannels', 'outChannels', 'numAttentionHeads', 'attentionHeadDim', 'numLayers', 'numSingleLayers',
  'numRefinerLayers', 'patchSize', 'patchSizeT', 'textEmbedDim', 'pooledProjectionDim', 'imageProjDim',
];

/**
 * A validated config from a diffusers config.json object (snake_case keys; `_class_name` and other `_` keys
 * are ignored), a camelCase partial config, or nothing (the reference defaults). Unknown keys are an error,
 * so a config for another model is not silently half-read.
 */
export function parseConfig(json: Record<string, unknown> = {}): DiTConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new DiTConfigError('config must be a JSON object');
  const cfg: Record<string, unknown> = { ...DEFAULT_CONFIG, ropeAxesDim: [...DEFAULT_CONFIG.ropeAxesDim] };
  const fields = new Set(Object.values(KEYS) as string[]);
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(json)) {
    if (k.startsWith('_')) continue;
    const field = KEYS[k] ?? (fields.has(k) ? k : undefined);
    if (!field) unknown.push(k);
    else cfg[field] = v;
  }
  const cls = json._class_name;
  if (cls !== undefined && cls !== 'HunyuanVideoTransformer3DModelPacked' && cls !== 'HunyuanVideoTransformer3DModel')
    throw new DiTConfigError(`config is for ${String(cls)}, not HunyuanVideoTransformer3DModelPacked`);
  if (unknown.length) throw new DiTConfigError(`unknown config keys: ${unknown.join(', ')} (is this a HunyuanVideo packed DiT config?)`);
  return validateConfig(cfg as unknown as DiTConfig);
}

/** Check every field; returns a frozen copy. */
export function validateConfig(c: DiTConfig): DiTConfig {
  const problems: string[] = [];
  for (const f of INT_FIELDS) {
    const v = c[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (f === 'numLayers' || f === 'numSingleLayers' || f === 'numRefinerLayers' ? 0 : 1))
      problems.push(`${f} must be a ${f.startsWith('num') && f !== 'numAttentionHeads' ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`);
  }
  if (typeof c.mlpRatio !== 'number' || !(c.mlpRatio > 0)) problems.push(`mlpRatio must be positive, got ${JSON.stringify(c.mlpRatio)}`);
  if (c.qkNorm !== 'rms_norm') problems.push(`qkNorm must be 'rms_norm' (the only one the packed model uses), got ${JSON.stringify(c.qkNorm)}`);
  if (typeof c.ropeTheta !== 'number' || !(c.ropeTheta > 0)) problems.push(`ropeTheta must be positive, got ${JSON.stringify(c.ropeTheta)}`);
  const r = c.ropeAxesDim;
  if (!Array.isArray(r) || r.length !== 3 || r.some((d) => !Number.isInteger(d) || d <= 0 || d % 2)) problems.push(`ropeAxesDim must be three positive even integers, got ${JSON.stringify(r)}`);
  else if (r[0] + r[1] + r[2] !== c.attentionHeadDim) problems.push(`ropeAxesDim ${JSON.stringify(r)} must add up to attentionHeadDim ${c.attentionHeadDim}`);
  for (const b of ['guidanceEmbeds', 'hasImageProj', 'hasCleanXEmbedder'] as const) if (typeof c[b] !== 'boolean') problems.push(`${b} must be a boolean, got ${JSON.stringify(c[b])}`);
  // the reference hard-codes 16 input channels in the clean-latent embedders
  if (c.hasCleanXEmbedder && c.inChannels !== 16) problems.push(`hasCleanXEmbedder needs inChannels 16 (the clean-latent embedders are built for 16), got ${c.inChannels}`);
  if (problems.length) throw new DiTConfigError(`invalid DiT config:\n  ${problems.join('\n  ')}`);
  return Object.freeze({ ...c, ropeAxesDim: [...c.ropeAxesDim] as [number, number, number] });
}

/** Read and validate a diffusers config.json. */
export function readConfigFile(path: string): DiTConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DiTConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DiTConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseConfig(json as Record<string, unknown>);
  } catch (e) {
    if (e instanceof DiTConfigError) throw new DiTConfigError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Hidden size (heads x head dim). */
export const innerDim = (c: DiTConfig) => c.numAttentionHeads * c.attentionHeadDim;
/** MLP width of the dual/single blocks: int(hidden * mlp_ratio) as the reference truncates. */
export const mlpDim = (c: DiTConfig) => Math.trunc(innerDim(c) * c.mlpRatio);
/** The token refiner's MLP width: the reference never passes mlp_ratio to it, so its default 4.0 applies. */
export const refinerMlpDim = (c: DiTConfig) => Math.trunc(innerDim(c) * 4.0);
