import * as T from '@framepack/tensor-core';
import { EncoderConfigError, EncoderInputError } from './errors.js';
import { activation, type Activation, mergeHeads, splitHeads } from './layers.js';
import { type LoadOptions, loadTensors, num, openWeights, posInt, readConfigJson, validateWeights, type WeightSpec } from './weights.js';
import { createLayerStream, layerGroups, type StreamLayersOptions } from './streaming.js';
import { directReaderAs, type TensorSource } from '@framepack/safetensors';

/** The LlamaConfig fields the text encoder uses (transformers names). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  hiddenAct: string;
  rmsNormEps: number;
  ropeTheta: number;
  /** null = plain RoPE; 'linear' and 'llama3' rescaling are supported. */
  ropeScaling: Record<string, any> | null;
  attentionBias: boolean;
  mlpBias: boolean;
}

/** Parse a transformers LlamaConfig dict (config.json), validating every field used. */
export function parseLlamaConfig(cfg: Record<string, any>, path = 'config'): LlamaConfig {
  const hiddenSize = posInt(cfg, 'hidden_size', path);
  const numAttentionHeads = posInt(cfg, 'num_attention_heads', path);
  const numKeyValueHeads = posInt(cfg, 'num_key_value_heads', path, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads) throw new EncoderConfigError(`num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`, path);
  const headDim = posInt(cfg, 'head_dim', path, hiddenSize / numAttentionHeads);
  if (headDim % 2) throw new EncoderConfigError(`head_dim ${headDim} must be even for rotary embeddings`, path);
  // transformers 5 moves rope_theta/rope_scaling into rope_parameters; accept both layouts.
  const rp = (cfg.rope_parameters ?? {}) as Record<string, any>;
  const ropeTheta = num({ v: cfg.rope_theta ?? rp.rope_theta }, 'v', path, 10000);
  let ropeScaling: Record<string, any> | null = cfg.rope_scaling ?? (rp.rope_type && rp.rope_type !== 'default' ? rp : null);
  if (ropeScaling) {
    const type = ropeScaling.rope_type ?? ropeScaling.type;
    if (type === 'default') ropeScaling = null;
    else if (type !== 'linear' && type !== 'llama3') throw new EncoderConfigError(`rope_scaling type '${type}' is not supported (supported: none, linear, llama3)`, path);
  }
  return {
    vocabSize: posInt(cfg, 'vocab_size', path),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size', path),
    numHiddenLayers: posInt(cfg, 'num_hidden_layers', path),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: String(cfg.hidden_act ?? 'silu'),
    rmsNormEps: num(cfg, 'rms_norm_eps', path, 1e-6),
    ropeTheta,
    ropeScaling,
    attentionBias: !!cfg.attention_bias,
    mlpBias: !!cfg.mlp_bias,
  };
}

/** Every LlamaModel key of this config with its shape (and the prefixes/ignorable keys a checkpoint may carry). */
export function llamaWeightSpec(c: LlamaConfig): WeightSpec {
  const shapes = new Map<string, readonly number[]>();
  const D = c.hiddenSize, qd = c.numAttentionHeads * c.headDim, kvd = c.numKeyValueHeads * c.headDim;
  shapes.set('embed_tokens.weight', [c.vocabSize, D]);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [D]);
    shapes.set(`${p}post_attention_layernorm.weight`, [D]);
    const lin = (name: string, o: number, inp: number, bias: boolean) => {
      shapes.set(`${p}${name}.weight`, [o, inp]);
      if (bias) shapes.set(`${p}${name}.bias`, [o]);
    };
    lin('self_attn.q_proj', qd, D, c.attentionBias);
    lin('self_attn.k_proj', kvd, D, c.attentionBias);
    lin('self_attn.v_proj', kvd, D, c.attentionBias);
    lin('self_attn.o_proj', D, qd, c.attentionBias);
    lin('mlp.gate_proj', c.intermediateSize, D, c.mlpBias);
    lin('mlp.up_proj', c.intermediateSize, D, c.mlpBias);
    lin('mlp.down_proj', D, c.intermediateSize, c.mlpBias);
  }
  shapes.set('norm.weight', [D]);
  return {
    what: 'LLaMA text encoder',
    shapes,
    // LlamaForCausalLM / llava saves put `model.` before the decoder; `language_model.model.` for llava wrappers.
    prefixes: ['', 'model.', 'language_model.model.'],
    ignorable: [/^lm_head\./, /rotary_emb\.inv_freq$/, /^(language_model\.)?lm_head\./],
  };
}

/** Inverse frequencies of the rotary embedding, with the config's rescaling (computed in float64, stored f32 as torch does). */
export function llamaInvFreq(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (!s) return inv;
  const type = s.rope_type ?? s.type;
  if (type === 'linear') {
    const f = Number(s.factor);
    for (let i = 0; i < half; i++) inv[i] = inv[i] / f;
    return inv;
  }
  // llama3: long wavelengths are slowed by `factor`, short ones kept, a smooth blend between.
  const factor = Number(s.factor), lowF = Number(s.low_freq_factor), highF = Number(s.high_freq_factor);
  const oldCtx = Number(s.original_max_position_embeddings);
  const lowWl = oldCtx / lowF, highWl = oldCtx / highF;
  for (let i = 0; i < half; i++) {
    const wl = (2 * Math.PI) / inv[i];
    if (wl > lowWl) inv[i] = inv[i] / factor;
    else if (wl >= highWl) {
      const smooth = (oldCtx / wl - lowF) / (highF - lowF);
      inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
    }
  }
  return inv;
}

/** cos/sin tables (L, headDim) for positions 0..L-1 in the rotate-half layout cat(freqs, freqs). */
export function llamaRopeTables(c: LlamaConfig, length: number, opts: { dtype?: T.DType; device?: T.DeviceType } = {}): { cos: T.Tensor; sin: T.Tensor } {
  const inv = llamaInvFreq(c);
  const D = c.headDim, half = D / 2;
  const cos = new Float32Array(length * D), sin = new Float32Array(length * D);
  for (let p = 0; p < length; p++)
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * inv[i]); // torch: fp32 outer product of positions and inv_freq
      const cv = Math.cos(a), sv = Math.sin(a);
      cos[p * D + i] = cos[p * D + half + i] = cv;
      sin[p * D + i] = sin[p * D + half + i] = sv;
    }
  const dtype = opts.dtype ?? 'f32', device = opts.device ?? 'cpu';
  const mk = (a: Float32Array) => T.tidy(() => T.cast(T.tensor(a, [length, D], { device }), dtype));
  return { cos: mk(cos), sin: mk(sin) };
}

export interface LlamaForwardOptions {
  /**
   * Which entry of transformers' `hidden_states` tuple to return: 0 = embeddings, i = output of decoder layer
   * i-1, numHiddenLayers = last layer after the final norm (= last_hidden_state). Negative counts from the
   * end (-3 = FramePack's choice). Only the layers needed are run. Default: -1.
   */
  hiddenStateIndex?: number;
}

/**
 * LLaMA decoder stack used as a text encoder (transformers LlamaModel): token embedding, pre-RMSNorm decoder
 * layers with GQA + RoPE attention and a SwiGLU MLP, final RMSNorm.
 */
export class LlamaTextEncoder {
  readonly act: Activation;
  /** Closes the checkpoint a 'source'-mode streamer reads from (set by `load`). */
  #closeSource: (() => void) | null = null;
  private constructor(
    readonly config: LlamaConfig,
    private readonly w: Map<string, T.Tensor>,
    /** Where the layers compute (the embedding table may stay on the host when streaming). */
    readonly device: T.DeviceType,
    /** Streamed decoder layers (low VRAM), or null when every layer is resident in `w`. */
    readonly streamer: T.WeightStreamer | null = null,
  ) {
    this.act = activation(config.hiddenAct, 'config.hidden_act');
  }

  /**
   * Load a transformers-format folder (config.json + model.safetensors or a sharded index). With
   * `hiddenStateIndex` (e.g. -3, FramePack) only the layers that index needs are read: the later layers and the
   * final norm stay on disk (2 of 32 layers, ~0.9 GB in fp16, for the HunyuanVideo encoder).
   * With `streamLayers` the decoder layers stay in host memory (pinned on CUDA) and pass through `slots` device
   * buffers, and the embedding table stays on the host (only the looked-up rows move): the device holds
   * `slots` layers (~0.44 GB each in bf16 for the 8B encoder) instead of 15 GB.
   */
  static load(dir: string, opts: LlamaLoadOptions = {}): LlamaTextEncoder {
    const config = parseLlamaConfig(readConfigJson(dir), `${dir}/config.json`);
    const src = openWeights(dir);
    let keepOpen = false;
    try {
      const enc = LlamaTextEncoder.fromSource(config, src, dir, opts);
      // 'source' streaming reads the layers from the checkpoint on every pass: it stays open until dispose
      if (opts.streamLayers?.hostCopy === 'source') enc.#closeSource = () => src.close();
      keepOpen = opts.streamLayers?.hostCopy === 'source';
      return enc;
    } finally {
      if (!keepOpen) src.close();
    }
  }
  /**
   * Build from a parsed config and an opened checkpoint (file, sharded index or any TensorSource). With
   * `streamLayers.hostCopy: 'source'` the source must stay open while the encoder is used.
   */
  static fromSource(config: LlamaConfig, src: TensorSource, sourceName: string, opts: LlamaLoadOptions = {}): LlamaTextEncoder {
    const spec = llamaWeightSpec(config);
    const prefix = validateWeights(src, spec, sourceName);
    const needed = neededKeys(config, spec, opts.hiddenStateIndex);
    const device = opts.device ?? 'cpu';
    if (!opts.streamLayers) return new LlamaTextEncoder(config, loadTensors(src, prefix, needed, opts), device);
    const groups = layerGroups(needed, spec.shapes, /^layers\.(\d+)\./, 'layers');
    const dtype = opts.dtype ?? 'f32';
    const streamer = createLayerStream(groups, (k) => src.tensor(prefix + k, { dtype, device: 'cpu' }), { dtype, device, readDirect: directReaderAs(src, dtype, prefix), ...opts.streamLayers });
    try {
      const rest = needed.filter((k) => !/^layers\./.test(k));
      const w = loadTensors(src, prefix, rest.filter((k) => k !== 'embed_tokens.weight'), opts);
      w.set('embed_tokens.weight', src.tensor(prefix + 'embed_tokens.weight', { dtype: opts.dtype ?? 'f32', device: 'cpu' }));
      return new LlamaTextEncoder(config, w, device, streamer);
    } catch (e) {
      streamer.dispose();
      throw e;
    }
  }
  /**
   * Build from a config dict and tensors under the bare LlamaModel key names (used as given; with `streamLayers`
   * the layers are copied into host buffers and the given tensors stay the caller's).
   */
  static fromWeights(config: Record<string, any> | LlamaConfig, weights: Record<string, T.Tensor> | Map<string, T.Tensor>, opts: Pick<LlamaLoadOptions, 'streamLayers' | 'hiddenStateIndex'> = {}): LlamaTextEncoder {
    const c = 'hiddenSize' in config ? (config as LlamaConfig) : parseLlamaConfig(config);
    const m = weights instanceof Map ? weights : new Map(Object.entries(weights));
    const spec = llamaWeightSpec(c);
    const prefix = validateWeights(mapSource(m), spec, 'weights');
    const needed = neededKeys(c, spec, opts.hiddenStateIndex);
    const embed = m.get(prefix + 'embed_tokens.weight')!;
    if (!opts.streamLayers) return new LlamaTextEncoder(c, new Map(needed.map((k) => [k, m.get(prefix + k)!])), embed.device);
    const groups = layerGroups(needed, spec.shapes, /^layers\.(\d+)\./, 'layers');
    const streamer = createLayerStream(groups, (k) => T.reshape(m.get(prefix + k)!, m.get(prefix + k)!.shape), { dtype: embed.dtype, device: embed.device, ...opts.streamLayers });
    return new LlamaTextEncoder(c, new Map(needed.filter((k) => !/^layers\./.test(k)).map((k) => [k, m.get(prefix + k)!])), embed.device, streamer);
  }

  get dtype(): T.DType {
    return this.w.get('embed_tokens.weight')!.dtype;
  }
  private p(name: string): T.Tensor {
    return this.w.get(name)!;
  }

  /**
   * Run the encoder on token ids (B, L) (i64/i32) with an optional attention mask (B, L) (1/true = real token;
   * any padding pattern). Returns the requested hidden state (B, L, hidden) in the weights' dtype.
   */
  forward(inputIds: T.Tensor, attentionMask?: T.Tensor | null, opts: LlamaForwardOptions = {}): T.Tensor {
    const c = this.config;
    if (inputIds.ndim !== 2) throw new EncoderInputError(`input_ids must be (batch, length), got [${inputIds.shape}]`);
    if (inputIds.dtype !== 'i64' && inputIds.dtype !== 'i32') throw new EncoderInputError(`input_ids must be i64 or i32, got ${inputIds.dtype}`);
    const [B, L] = inputIds.shape;
    if (attentionMask && (attentionMask.ndim !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== L))
      throw new EncoderInputError(`attention_mask [${attentionMask.shape}] does not match input_ids [${inputIds.shape}]`);
    const ids = inputIds.toArray();
    const bad = ids.find((v) => !(v >= 0 && v < c.vocabSize));
    if (bad !== undefined) throw new EncoderInputError(`token id ${bad} is outside the vocabulary (0..${c.vocabSize - 1})`);
    const idx = resolveIndex(opts.hiddenStateIndex ?? -1, c.numHiddenLayers);
    const lastNeeded = idx === c.numHiddenLayers ? 'norm.weight' : idx > 0 ? `layers.${idx - 1}.input_layernorm.weight` : null;
    if (lastNeeded && !this.w.has(lastNeeded) && !this.streamer?.has(lastNeeded.replace(/\.input_layernorm\.weight$/, '')))
      throw new EncoderInputError(`hidden state ${opts.hiddenStateIndex ?? -1} needs weights that were not loaded (the encoder was loaded with a smaller hiddenStateIndex)`);

    const { cos, sin } = llamaRopeTables(c, L, { dtype: this.dtype, device: this.device });
    // Key-padding mask (B,1,1,L); combined with the causal mask inside attention.
    const keyMask = attentionMask
      ? T.tidy(() => {
          const m = T.toDevice(attentionMask, this.device);
          return T.reshape(m.dtype === 'bool' ? m : T.ne(m, 0), [B, 1, 1, L]);
        })
      : null;
    // GQA: query head j reads key/value head floor(j / rep); the index is built once per call.
    const rep = c.numAttentionHeads / c.numKeyValueHeads;
    const kvMap = rep > 1 ? T.tensor(Int32Array.from({ length: c.numAttentionHeads }, (_, j) => Math.floor(j / rep)), [c.numAttentionHeads], { dtype: 'i32', device: this.device }) : null;
    try {
      // a streamed encoder keeps its embedding table on the host: look the rows up there and move only them
      const table = this.p('embed_tokens.weight');
      let h = T.tidy(() => {
        const rows = T.embedding(T.toDevice(inputIds, table.device), table);
        return rows.device === this.device ? rows : T.toDevice(rows, this.device);
      });
      // hidden_states[i] for i < numHiddenLayers is the raw output of layer i-1; the last entry is normed.
      const layersToRun = idx === c.numHiddenLayers ? c.numHiddenLayers : idx;
      for (let i = 0; i < layersToRun; i++) {
        const params = this.streamer ? this.streamer.acquire(`layers.${i}`) : this.w;
        const next = this.layer(params, h, i, cos, sin, keyMask, kvMap);
        // the layer's kernels are queued: its slot may be refilled once they have run
        this.streamer?.release(`layers.${i}`);
        h.dispose();
        h = next;
      }
      if (idx === c.numHiddenLayers) {
        const n = T.rmsNorm(h, this.p('norm.weight'), c.rmsNormEps);
        h.dispose();
        h = n;
      }
      return h;
    } finally {
      cos.dispose();
      sin.dispose();
      keyMask?.dispose();
      kvMap?.dispose();
      this.streamer?.releaseAll();
    }
  }

  /** One decoder layer: h + o(attn(RMSNorm(h))), then + down(act(gate(n)) * up(n)). */
  private layer(w: ReadonlyMap<string, T.Tensor>, h: T.Tensor, i: number, cos: T.Tensor, sin: T.Tensor, keyMask: T.Tensor | null, kvMap: T.Tensor | null): T.Tensor {
    const c = this.config;
    const p = (n: string) => w.get(`layers.${i}.${n}`)!;
    const b = (n: string) => w.get(`layers.${i}.${n}`) ?? null;
    return T.tidy(() => {
      const n1 = T.rmsNorm(h, p('input_layernorm.weight'), c.rmsNormEps);
      const q = T.rope(splitHeads(T.linear(n1, p('self_attn.q_proj.weight'), b('self_attn.q_proj.bias')), c.numAttentionHeads), cos, sin, 'half');
      let k = T.rope(splitHeads(T.linear(n1, p('self_attn.k_proj.weight'), b('self_attn.k_proj.bias')), c.numKeyValueHeads), cos, sin, 'half');
      let v = splitHeads(T.linear(n1, p('self_attn.v_proj.weight'), b('self_attn.v_proj.bias')), c.numKeyValueHeads);
      if (kvMap) {
        k = T.indexSelect(k, 1, kvMap);
        v = T.indexSelect(v, 1, kvMap);
      }
      const a = T.scaledDotProductAttention(q, k, v, { mask: keyMask, causal: true, scale: 1 / Math.sqrt(c.headDim) });
      const h1 = T.add(h, T.linear(mergeHeads(a), p('self_attn.o_proj.weight'), b('self_attn.o_proj.bias')));
      const n2 = T.rmsNorm(h1, p('post_attention_layernorm.weight'), c.rmsNormEps);
      const g = this.act(T.linear(n2, p('mlp.gate_proj.weight'), b('mlp.gate_proj.bias')));
      const u = T.linear(n2, p('mlp.up_proj.weight'), b('mlp.up_proj.bias'));
      return T.add(h1, T.linear(T.mul(g, u), p('mlp.down_proj.weight'), b('mlp.down_proj.bias')));
    });
  }

  dispose(): void {
    for (const t of this.w.values()) t.dispose();
    this.w.clear();
    this.streamer?.dispose();
    this.#closeSource?.();
    this.#closeSource = null;
  }
}

export interface LlamaLoadOptions extends LoadOptions {
  /** Load only what this hidden_states index needs (see LlamaForwardOptions); default: everything. */
  hiddenStateIndex?: number;
  /** Stream the decoder layers through device slots (low VRAM); the embedding table stays on the host. */
  streamLayers?: StreamLayersOptions;
}

/** The keys a hidden_states index needs: the layers before it, and the final norm only for the last entry. */
function neededKeys(c: LlamaConfig, spec: WeightSpec, hiddenStateIndex: number | undefined): string[] {
  const keep = hiddenStateIndex === undefined ? c.numHiddenLayers + 1 : resolveIndex(hiddenStateIndex, c.numHiddenLayers);
  return [...spec.shapes.keys()].filter((k) => {
    const m = /^layers\.(\d+)\./.exec(k);
    if (m) return Number(m[1]) < keep;
    return k !== 'norm.weight' || keep > c.numHiddenLayers - 1;
  });
}

/** hidden_states index (negative from the end) -> 0..numLayers. */
function resolveIndex(index: number, numLayers: number): number {
  const idx = index < 0 ? index + numLayers + 1 : index;
  if (!Number.isInteger(idx) || idx < 0 || idx > numLayers)
    throw new EncoderInputError(`hiddenStateIndex ${index} is out of range for ${numLayers} layers (hidden_states has ${numLayers + 1} entries)`);
  return idx;
}

/** A TensorSource over in-memory tensors (for fromWeights validation). */
export function mapSource(m: Map<string, T.Tensor>): TensorSource {
  return {
    keys: () => [...m.keys()],
    has: (k) => m.has(k),
    info: (k) => ({ dtype: m.get(k)!.dtype, shape: [...m.get(k)!.shape] }) as any,
    tensor: (k) => m.get(k)!,
    close: () => {},
  };
}
