/**
 * The models' sizes for the memory planner, from what is on disk without reading any weight: each component's
 * config.json and its safetensors headers (key -> shape). Sizes are counted in the compute dtype, the way the
 * loaders place them (LLaMA: only the layers hidden_states[-3] needs; SigLIP: no pooling head).
 */
import { join } from 'node:path';
import { blockNames, expectedWeightShapes, innerDim, parseConfig, readConfigFile, type DiTConfig } from '@framepack/dit-model';
import {
  HUNYUAN_CROP_START,
  clipWeightSpec,
  llamaWeightSpec,
  siglipWeightSpec,
  parseClipTextConfig,
  parseLlamaConfig,
  parseSiglipVisionConfig,
  readConfigJson,
  type ClipTextConfig,
  type LlamaConfig,
  type SiglipVisionConfig,
} from '@framepack/encoders';
import { openCheckpoint } from '@framepack/safetensors';
import { streamGroupLayout } from '@framepack/tensor-core';
import { configFromDiffusers, expectedParameters, type HunyuanVideoVaeConfig } from '@framepack/vae-tiling';
import type { LayeredWeights, PlanModels, Weights8Bit } from './memory-plan.js';

type Shapes = ReadonlyMap<string, readonly number[]>;

/** Each component's parsed config and its checkpoint's key -> shape map. */
export interface ModelShapes {
  dit: { config: DiTConfig; shapes: Shapes };
  llama: { config: LlamaConfig; shapes: Shapes };
  clip: { config: ClipTextConfig; shapes: Shapes };
  siglip: { config: SiglipVisionConfig; shapes: Shapes };
  vae: { config: HunyuanVideoVaeConfig; shapes: Shapes };
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Split a checkpoint into fixed bytes and per-unit bytes. `unitOf` names the unit a (prefix-stripped) key belongs
 * to (null: fixed), `skip` drops keys the loader never reads; `order` lists the units that run.
 */
function layered(shapes: Shapes, bpe: number, strip: RegExp, unitOf: (k: string) => string | null, order: string[], skip: (k: string) => boolean, hostable: (k: string) => boolean = () => false): LayeredWeights {
  const units = new Map(order.map((u) => [u, 0]));
  let fixedBytes = 0, hostableBytes = 0;
  for (const [key, shape] of shapes) {
    const k = key.replace(strip, '');
    if (skip(k)) continue;
    const bytes = numel(shape) * bpe;
    const u = unitOf(k);
    if (u === null) {
      fixedBytes += bytes;
      if (hostable(k)) hostableBytes += bytes;
    } else if (units.has(u)) units.set(u, units.get(u)! + bytes);
  }
  return { fixedBytes, hostableBytes, unitBytes: order.map((u) => units.get(u)!) };
}

/**
 * The DiT blocks as 8-bit streaming stores them (tensor-core's WeightStreamer layout, the same for int8 and fp8):
 * bytes per copy and dequantize-scratch bytes per block. `bpe` 4 counts in f32, anything else in bf16.
 */
function ditWeights8(shapes: Shapes, blocks: string[], bpe: number): Weights8Bit {
  const byBlock = new Map(blocks.map((b) => [b, [] as { key: string; shape: readonly number[] }[]]));
  for (const [key, shape] of shapes) byBlock.get(/^((?:single_)?transformer_blocks\.\d+)\./.exec(key)?.[1] ?? '')?.push({ key, shape });
  const dtype = bpe === 4 ? 'f32' : 'bf16';
  const layouts = blocks.map((name) => streamGroupLayout({ name, params: byBlock.get(name)! }, dtype, 'int8'));
  return { unitBytes: layouts.map((l) => l.copyBytes), scratchBytes: layouts.map((l) => l.scratchBytes) };
}

/** LLaMA tokens of the longest prompt pass: the template before the prompt + 256 kept prompt tokens. */
export const LLAMA_MAX_TOKENS = HUNYUAN_CROP_START + 256;

/** The planner's view of the models (`bpe`: bytes per element of the compute dtype). */
export function planModels(s: ModelShapes, bpe: number): PlanModels {
  const dc = s.dit.config;
  const dit = layered(s.dit.shapes, bpe, /^$/, (k) => /^((?:single_)?transformer_blocks\.\d+)\./.exec(k)?.[1] ?? null, blockNames(dc), () => false);

  // hidden_states[-3]: layers 0 .. L-3 run; the last 2 layers and the final norm are never loaded
  const lc = s.llama.config;
  const used = Math.max(0, lc.numHiddenLayers - 2);
  const llamaLayer = (k: string) => /^layers\.(\d+)\./.exec(k);
  const llama = layered(
    s.llama.shapes, bpe, /^(language_model\.)?(model\.)?/,
    (k) => (llamaLayer(k) ? `layers.${llamaLayer(k)![1]}` : null),
    Array.from({ length: used }, (_, i) => `layers.${i}`),
    (k) => /^lm_head\./.test(k) || /rotary_emb/.test(k) || k === 'norm.weight' || (llamaLayer(k) !== null && Number(llamaLayer(k)![1]) >= used),
    (k) => k === 'embed_tokens.weight',
  );

  const cc = s.clip.config;
  const clip = layered(s.clip.shapes, bpe, /^text_model\./, () => null, [], (k) => /position_ids$/.test(k) || /^text_projection\./.test(k));

  const sc = s.siglip.config;
  const siglipLayer = (k: string) => /^encoder\.layers\.(\d+)\./.exec(k);
  const siglip = layered(
    s.siglip.shapes, bpe, /^vision_model\./,
    (k) => (siglipLayer(k) ? `encoder.layers.${siglipLayer(k)![1]}` : null),
    Array.from({ length: sc.numHiddenLayers }, (_, i) => `encoder.layers.${i}`),
    (k) => /^head\./.test(k) || /position_ids$/.test(k) || /^text_model\./.test(k) || /^logit_(scale|bias)$/.test(k),
  );

  const vc = s.vae.config;
  let vaeBytes = 0;
  for (const shape of s.vae.shapes.values()) vaeBytes += numel(shape) * bpe;

  return {
    dit: { weights: dit, innerDim: innerDim(dc), patchSize: dc.patchSize, patchSizeT: dc.patchSizeT, weights8bit: ditWeights8(s.dit.shapes, blockNames(dc), bpe) },
    llama: { weights: llama, hiddenSize: lc.hiddenSize, intermediateSize: lc.intermediateSize, numAttentionHeads: lc.numAttentionHeads, tokens: LLAMA_MAX_TOKENS },
    clip: { weights: clip, hiddenSize: cc.hiddenSize, intermediateSize: cc.intermediateSize, numAttentionHeads: cc.numAttentionHeads, tokens: cc.maxPositionEmbeddings },
    siglip: { weights: siglip, hiddenSize: sc.hiddenSize, intermediateSize: sc.intermediateSize, numAttentionHeads: sc.numAttentionHeads, tokens: Math.floor(sc.imageSize / sc.patchSize) ** 2 },
    vae: { weightBytes: vaeBytes, blockOutChannels: [...vc.blockOutChannels], spatialRatio: vc.spatialCompressionRatio, temporalRatio: vc.temporalCompressionRatio, latentChannels: vc.latentChannels },
  };
}

/** Key -> shape of a checkpoint (folder, file or sharded index), from its headers only. */
export function checkpointShapes(path: string): Map<string, readonly number[]> {
  const ckpt = openCheckpoint(path);
  try {
    return new Map(ckpt.keys().map((k) => [k, ckpt.info(k).shape]));
  } finally {
    ckpt.close();
  }
}

/** Read every component's config.json and safetensors headers. */
export function readModelShapes(paths: { transformer: string; text_encoder: string; text_encoder_2: string; image_encoder: string; vae: string }): ModelShapes {
  return {
    dit: { config: readConfigFile(join(paths.transformer, 'config.json')), shapes: checkpointShapes(paths.transformer) },
    llama: { config: parseLlamaConfig(readConfigJson(paths.text_encoder), `${paths.text_encoder}/config.json`), shapes: checkpointShapes(paths.text_encoder) },
    clip: { config: parseClipTextConfig(readConfigJson(paths.text_encoder_2), `${paths.text_encoder_2}/config.json`), shapes: checkpointShapes(paths.text_encoder_2) },
    siglip: { config: parseSiglipVisionConfig(readConfigJson(paths.image_encoder), `${paths.image_encoder}/config.json`), shapes: checkpointShapes(paths.image_encoder) },
    vae: { config: configFromDiffusers(readConfigJson(paths.vae)), shapes: checkpointShapes(paths.vae) },
  };
}

/**
 * The same from configs alone (diffusers / transformers config.json objects): the shapes each package's loader
 * expects, under the reference key names (SigLIP with its pooling head, as the checkpoints ship it).
 */
export function modelShapesFromConfigs(c: { transformer: Record<string, unknown>; text_encoder: Record<string, unknown>; text_encoder_2: Record<string, unknown>; image_encoder: Record<string, unknown>; vae: Record<string, unknown> }): ModelShapes {
  const dit = parseConfig(c.transformer);
  const llama = parseLlamaConfig(c.text_encoder);
  const clip = parseClipTextConfig(c.text_encoder_2);
  const siglip = parseSiglipVisionConfig(c.image_encoder);
  const vae = configFromDiffusers(c.vae);
  return {
    dit: { config: dit, shapes: expectedWeightShapes(dit) },
    llama: { config: llama, shapes: llamaWeightSpec(llama).shapes },
    clip: { config: clip, shapes: clipWeightSpec(clip).shapes },
    siglip: { config: siglip, shapes: siglipWeightSpec(siglip, true).shapes },
    vae: { config: vae, shapes: expectedParameters(vae) },
  };
}
