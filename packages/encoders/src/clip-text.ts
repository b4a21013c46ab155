import * as T from '@framepack/tensor-core';
import type { TensorSource } from '@framepack/safetensors';
import { EncoderConfigError, EncoderInputError } from './errors.js';
import { activation, type Activation, preLnLayer, preLnLayerShapes } from './layers.js';
import { mapSource } from './llama.js';
import { type LoadOptions, loadTensors, num, openWeights, posInt, readConfigJson, validateWeights, type WeightSpec } from './weights.js';

/** The CLIPTextConfig fields the encoder uses. */
export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: string;
  layerNormEps: number;
  /** 2 in legacy configs (openai CLIP-L): pooling then takes argmax(input_ids), i.e. the highest id (the EOS). */
  eosTokenId: number;
}

/** Parse a CLIPTextConfig dict; a full CLIPConfig (with `text_config`) is accepted too. */
export function parseClipTextConfig(cfg: Record<string, any>, path = 'config'): ClipTextConfig {
  const c = cfg.text_config && typeof cfg.text_config === 'object' ? cfg.text_config : cfg;
  const hiddenSize = posInt(c, 'hidden_size', path);
  const numAttentionHeads = posInt(c, 'num_attention_heads', path);
  if (hiddenSize % numAttentionHeads) throw new EncoderConfigError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`, path);
  return {
    vocabSize: posInt(c, 'vocab_size', path),
    hiddenSize,
    intermediateSize: posInt(c, 'intermediate_size', path),
    numHiddenLayers: posInt(c, 'num_hidden_layers', path),
    numAttentionHeads,
    maxPositionEmbeddings: posInt(c, 'max_position_embeddings', path, 77),
    hiddenAct: String(c.hidden_act ?? 'quick_gelu'),
    layerNormEps: num(c, 'layer_norm_eps', path, 1e-5),
    eosTokenId: num(c, 'eos_token_id', path, 2),
  };
}

/** Every CLIPTextModel key of this config with its shape. */
export function clipWeightSpec(c: ClipTextConfig): WeightSpec {
  const D = c.hiddenSize;
  const shapes = new Map<string, readonly number[]>([
    ['embeddings.token_embedding.weight', [c.vocabSize, D]],
    ['embeddings.position_embedding.weight', [c.maxPositionEmbeddings, D]],
  ]);
  for (let i = 0; i < c.numHiddenLayers; i++) for (const [k, s] of preLnLayerShapes(`encoder.layers.${i}.`, D, c.intermediateSize)) shapes.set(k, s);
  shapes.set('final_layer_norm.weight', [D]);
  shapes.set('final_layer_norm.bias', [D]);
  return {
    what: 'CLIP text encoder',
    shapes,
    prefixes: ['', 'text_model.'],
    // Old saves keep the position_ids buffer; a CLIPTextModelWithProjection adds text_projection.
    ignorable: [/position_ids$/, /^text_projection\./, /^logit_scale$/, /^vision_model\./, /^visual_projection\./],
  };
}

/** CLIP text transformer (transformers CLIPTextModel): causal pre-LN encoder, pooled output at the EOS token. */
export class ClipTextEncoder {
  readonly act: Activation;
  private constructor(
    readonly config: ClipTextConfig,
    private readonly w: Map<string, T.Tensor>,
  ) {
    this.act = activation(config.hiddenAct, 'config.hidden_act');
  }

  static load(dir: string, opts: LoadOptions = {}): ClipTextEncoder {
    const config = parseClipTextConfig(readConfigJson(dir), `${dir}/config.json`);
    const src = openWeights(dir);
    try {
      return ClipTextEncoder.fromSource(config, src, dir, opts);
    } finally {
      src.close();
    }
  }
  static fromSource(config: ClipTextConfig, src: TensorSource, sourceName: string, opts: LoadOptions = {}): ClipTextEncoder {
    const spec = clipWeightSpec(config);
    const prefix = validateWeights(src, spec, sourceName);
    return new ClipTextEncoder(config, loadTensors(src, prefix, spec.shapes.keys(), opts));
  }
  static fromWeights(config: Record<string, any> | ClipTextConfig, weights: Record<string, T.Tensor> | Map<string, T.Tensor>): ClipTextEncoder {
    const c = 'hiddenSize' in config ? (config as ClipTextConfig) : parseClipTextConfig(config);
    const m = weights instanceof Map ? weights : new Map(Object.entries(weights));
    const spec = clipWeightSpec(c);
    const prefix = validateWeights(mapSource(m), spec, 'weights');
    return new ClipTextEncoder(c, new Map([...spec.shapes.keys()].map((k) => [k, m.get(prefix + k)!])));
  }

  get dtype(): T.DType {
    return this.w.get('final_layer_norm.weight')!.dtype;
  }
  get device(): T.DeviceType {
    return this.w.get('final_layer_norm.weight')!.device;
  }

  /** Validate ids (B, L) and return them as host numbers. */
  private checkIds(inputIds: T.Tensor): number[] {
    const c = this.config;
    if (inputIds.ndim !== 2) throw new EncoderInputError(`input_ids must be (batch, length), got [${inputIds.shape}]`);
    if (inputIds.dtype !== 'i64' && inputIds.dtype !== 'i32') throw new EncoderInputError(`input_ids must be i64 or i32, got ${inputIds.dtype}`);
    if (inputIds.shape[1] > c.maxPositionEmbeddings) throw new EncoderInputError(`${inputIds.shape[1]} tokens exceed max_position_embeddings (${c.maxPositionEmbeddings}); truncate to ${c.maxPositionEmbeddings}`);
    const ids = inputIds.toArray();
    const bad = ids.find((v) => !(v >= 0 && v < c.vocabSize));
    if (bad !== undefined) throw new EncoderInputError(`token id ${bad} is outside the vocabulary (0..${c.vocabSize - 1})`);
    return ids;
  }

  /**
   * last_hidden_state (B, L, hidden): token + position embeddings, causal layers, final LayerNorm. An optional
   * attention mask (B, L) hides padded keys on top of the causal mask (FramePack passes none).
   */
  forward(inputIds: T.Tensor, attentionMask?: T.Tensor | null): T.Tensor {
    this.checkIds(inputIds);
    return this.encode(inputIds, attentionMask ?? null);
  }

  private encode(inputIds: T.Tensor, attentionMask: T.Tensor | null): T.Tensor {
    const c = this.config;
    const [B, L] = inputIds.shape;
    if (attentionMask && (attentionMask.ndim !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== L))
      throw new EncoderInputError(`attention_mask [${attentionMask.shape}] does not match input_ids [${inputIds.shape}]`);
    return T.tidy(() => {
      const tok = T.embedding(T.toDevice(inputIds, this.device), this.w.get('embeddings.token_embedding.weight')!);
      const pos = T.slice(this.w.get('embeddings.position_embedding.weight')!, 0, 0, L);
      let h = T.add(tok, pos);
      const mask = attentionMask ? T.reshape(attentionMask.dtype === 'bool' ? T.toDevice(attentionMask, this.device) : T.ne(T.toDevice(attentionMask, this.device), 0), [B, 1, 1, L]) : null;
      for (let i = 0; i < c.numHiddenLayers; i++) {
        const prefix = `encoder.layers.${i}.`;
        const next = preLnLayer(h, (n) => this.w.get(prefix + n)!, c.numAttentionHeads, c.layerNormEps, this.act, { causal: true, mask });
        h.dispose();
        h = next;
      }
      return T.layerNorm(h, this.w.get('final_layer_norm.weight')!, this.w.get('final_layer_norm.bias')!, c.layerNormEps);
    });
  }

  /**
   * Index of the pooled token per row: with eos_token_id == 2 (legacy configs) transformers takes
   * argmax(input_ids) (the first occurrence of the highest id, i.e. the EOS in the openai vocab); otherwise the
   * first position holding eos_token_id (position 0 when a row has none, as torch's argmax of an all-false row).
   */
  poolIndices(ids: readonly number[], B: number, L: number): number[] {
    const out: number[] = [];
    for (let b = 0; b < B; b++) {
      const row = ids.slice(b * L, (b + 1) * L);
      let k = 0;
      if (this.config.eosTokenId === 2) {
        for (let i = 1; i < L; i++) if (row[i] > row[k]) k = i;
      } else {
        // (input_ids == eos).int().argmax(-1): first match, 0 when the row has no EOS.
        k = Math.max(0, row.indexOf(this.config.eosTokenId));
      }
      out.push(k);
    }
    return out;
  }

  /** pooler_output (B, hidden): the final-normed state at the pooled token of each row. */
  pooled(inputIds: T.Tensor, attentionMask?: T.Tensor | null): T.Tensor {
    const { lastHiddenState, pooled } = this.forwardWithPooled(inputIds, attentionMask);
    lastHiddenState.dispose();
    return pooled;
  }

  /** Both outputs; callers dispose them. */
  forwardWithPooled(inputIds: T.Tensor, attentionMask?: T.Tensor | null): { lastHiddenState: T.Tensor; pooled: T.Tensor } {
    const ids = this.checkIds(inputIds);
    const [B, L] = inputIds.shape;
    const last = this.encode(inputIds, attentionMask ?? null);
    const rows = this.poolIndices(ids, B, L).map((k, b) => b * L + k);
    const pooled = T.tidy(() => T.indexSelect(T.reshape(last, [B * L, this.config.hiddenSize]), 0, T.tensor(Int32Array.from(rows), [B], { dtype: 'i32', device: this.device })));
    return { lastHiddenState: last, pooled };
  }

  dispose(): void {
    for (const t of this.w.values()) t.dispose();
    this.w.clear();
  }
}
