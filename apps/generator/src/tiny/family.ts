/**
 * The embedded tiny model family: the real architectures at toy sizes, with weights drawn deterministically from a
 * seed and written once to a cache folder in the same layout (config.json + safetensors per component) as the real
 * checkpoints, so the generator loads them through exactly the same code path. Its videos are not meaningful.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import { modelShapesFromConfigs, type ModelShapes } from '../model-sizes.js';
import { CLIP_TINY_VOCAB, LLAMA_TINY_VOCAB, clipTokenizerFiles, llamaTokenizerFiles } from './tokenizer-files.js';

/** Bump when the configs or the weight recipe change: the cache folder is keyed by it. */
export const TINY_FAMILY_VERSION = 1;
export const TINY_SEED = 20250503;

const LLAMA_HIDDEN = 32;
const CLIP_HIDDEN = 32;
const SIGLIP_HIDDEN = 48;

export const tinyConfigs = {
  transformer: {
    _class_name: 'HunyuanVideoTransformer3DModelPacked', _diffusers_version: '0.33.1',
    in_channels: 16, out_channels: 16, num_attention_heads: 2, attention_head_dim: 16, num_layers: 2, num_single_layers: 2,
    num_refiner_layers: 2, mlp_ratio: 4.0, patch_size: 2, patch_size_t: 1, qk_norm: 'rms_norm', guidance_embeds: true,
    text_embed_dim: LLAMA_HIDDEN, pooled_projection_dim: CLIP_HIDDEN, rope_theta: 256.0, rope_axes_dim: [4, 6, 6],
    has_image_proj: true, image_proj_dim: SIGLIP_HIDDEN, has_clean_x_embedder: true,
  },
  vae: {
    _class_name: 'AutoencoderKLHunyuanVideo', _diffusers_version: '0.33.1',
    in_channels: 3, out_channels: 3, latent_channels: 16,
    down_block_types: Array(4).fill('HunyuanVideoDownBlock3D'), up_block_types: Array(4).fill('HunyuanVideoUpBlock3D'),
    block_out_channels: [8, 16, 16, 16], layers_per_block: 1, act_fn: 'silu', norm_num_groups: 4, scaling_factor: 0.476986,
    spatial_compression_ratio: 8, temporal_compression_ratio: 4, mid_block_add_attention: true,
  },
  text_encoder: {
    architectures: ['LlamaModel'], model_type: 'llama', vocab_size: LLAMA_TINY_VOCAB, hidden_size: LLAMA_HIDDEN,
    intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8,
    hidden_act: 'silu', max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 500000.0, rope_scaling: null,
    attention_bias: false, mlp_bias: false, tie_word_embeddings: false, bos_token_id: 256, eos_token_id: 257,
  },
  text_encoder_2: {
    architectures: ['CLIPTextModel'], model_type: 'clip_text_model', vocab_size: CLIP_TINY_VOCAB, hidden_size: CLIP_HIDDEN,
    intermediate_size: 64, projection_dim: CLIP_HIDDEN, num_hidden_layers: 2, num_attention_heads: 2,
    max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, bos_token_id: 0, eos_token_id: 2, pad_token_id: 1,
  },
  image_encoder: {
    architectures: ['SiglipVisionModel'], model_type: 'siglip_vision_model', hidden_size: SIGLIP_HIDDEN, intermediate_size: 96,
    num_hidden_layers: 2, num_attention_heads: 2, num_channels: 3, image_size: 32, patch_size: 8,
    hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6, attention_dropout: 0.0,
  },
  feature_extractor: {
    image_processor_type: 'SiglipImageProcessor', do_resize: true, size: { height: 32, width: 32 }, resample: 3,
    do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
  },
} as const;

/** The config.json objects of a family (the keys are the component folders). */
export type FamilyConfigs = { [K in keyof typeof tinyConfigs]: Record<string, unknown> };

/**
 * Which safetensors file, storage dtype and key prefix each weighted component uses (as the real repos do); the
 * names and shapes are the ones each package's loader expects for the config. Shared with the full-size family.
 */
export const FAMILY_COMPONENTS: { folder: keyof typeof tinyConfigs; part: keyof ModelShapes; file: string; dtype: T.DType; prefix: string }[] = [
  { folder: 'transformer', part: 'dit', file: 'diffusion_pytorch_model.safetensors', dtype: 'bf16', prefix: '' },
  { folder: 'vae', part: 'vae', file: 'diffusion_pytorch_model.safetensors', dtype: 'f16', prefix: '' },
  { folder: 'text_encoder', part: 'llama', file: 'model.safetensors', dtype: 'f16', prefix: '' },
  { folder: 'text_encoder_2', part: 'clip', file: 'model.safetensors', dtype: 'f16', prefix: 'text_model.' },
  { folder: 'image_encoder', part: 'siglip', file: 'model.safetensors', dtype: 'bf16', prefix: 'vision_model.' },
];

/** FNV-1a of the parameter name mixed with the family seed: each tensor is independent of the order of the others. */
export function seedFor(name: string, seed = TINY_SEED): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32 + Box-Muller: a small, exactly reproducible normal stream. */
function normals(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const a = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

/** How a parameter is drawn: biases 0, norm scales 1, else normal with a standard deviation. */
export type ParameterInit = { kind: 'zeros' } | { kind: 'ones' } | { kind: 'normal'; std: number };

/** Norm scales 1, biases 0, embeddings N(0, 1), projections N(0, 1/fan_in) (modulation layers smaller). */
export function parameterInit(name: string, shape: readonly number[]): ParameterInit {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('bias')) return { kind: 'zeros' };
  if (shape.length === 1) return { kind: 'ones' };
  const isEmbedding = /embed_tokens|token_embedding|position_embedding|probe/.test(name);
  const fanIn = n / shape[0];
  const modulation = /norm1\.linear|norm1_context\.linear|norm\.linear|norm_out\.linear/.test(name);
  return { kind: 'normal', std: isEmbedding ? 1 : (modulation ? 0.2 : 1) / Math.sqrt(fanIn) };
}

export function tinyParameter(name: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const init = parameterInit(name, shape);
  if (init.kind === 'zeros') return new Float32Array(n);
  if (init.kind === 'ones') return new Float32Array(n).fill(1);
  const values = normals(n, seedFor(name));
  for (let i = 0; i < n; i++) values[i] *= init.std;
  return values;
}

/** Writes each component's config.json (the processor's preprocessor_config.json) under `folderOf(component)`. */
export function writeFamilyConfigs(configs: FamilyConfigs, folderOf: (folder: keyof typeof tinyConfigs) => string): void {
  for (const [folder, config] of Object.entries(configs) as [keyof typeof tinyConfigs, unknown][]) {
    mkdirSync(folderOf(folder), { recursive: true });
    writeFileSync(join(folderOf(folder), folder === 'feature_extractor' ? 'preprocessor_config.json' : 'config.json'), JSON.stringify(config, null, 2));
  }
}

/** The cache folder ($FRAMEPACK_CACHE or ~/.cache/framepack). */
export function tinyModelDir(): string {
  const root = process.env.FRAMEPACK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'framepack');
  return join(root, `tiny-v${TINY_FAMILY_VERSION}`);
}

/** Writes the tiny family once (atomically: a temporary folder renamed into place) and returns its folder. */
export function ensureTinyModels(dir = tinyModelDir()): string {
  if (existsSync(join(dir, 'COMPLETE'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    const write = (folder: string, file: string, content: unknown) => {
      mkdirSync(join(tmp, folder), { recursive: true });
      writeFileSync(join(tmp, folder, file), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    };
    writeFamilyConfigs(tinyConfigs, (folder) => join(tmp, folder));
    const shapes = modelShapesFromConfigs(tinyConfigs);
    for (const c of FAMILY_COMPONENTS) {
      const tensors: Record<string, T.Tensor> = {};
      for (const [key, shape] of shapes[c.part].shapes) {
        const name = c.prefix + key;
        const f32 = T.tensor(tinyParameter(name, shape), shape);
        tensors[name] = T.cast(f32, c.dtype);
        f32.dispose();
      }
      writeSafetensors(join(tmp, c.folder, c.file), tensors, { format: 'pt', framepack_tiny: String(TINY_FAMILY_VERSION) });
      for (const t of Object.values(tensors)) t.dispose();
    }
    for (const [file, content] of Object.entries(llamaTokenizerFiles())) write('tokenizer', file, content);
    for (const [file, content] of Object.entries(clipTokenizerFiles())) write('tokenizer_2', file, content);
    writeFileSync(join(tmp, 'COMPLETE'), `framepack tiny model family v${TINY_FAMILY_VERSION}, seed ${TINY_SEED}\n`);
    mkdirSync(join(dir, '..'), { recursive: true });
    if (existsSync(dir) && !existsSync(join(dir, 'COMPLETE'))) rmSync(dir, { recursive: true, force: true }); // an interrupted older write
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // another process finished first: theirs is identical
      if (!existsSync(join(dir, 'COMPLETE'))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
