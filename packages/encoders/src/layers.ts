import * as T from '@framepack/tensor-core';
import { EncoderConfigError } from './errors.js';

export type Activation = (x: T.Tensor) => T.Tensor;

/** transformers' ACT2FN names used by the encoders here. */
export function activation(name: string, path: string): Activation {
  switch (name) {
    case 'silu':
    case 'swish':
      return T.silu;
    case 'quick_gelu':
      return T.quickGelu;
    case 'gelu':
      return (x) => T.gelu(x, 'none');
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
    case 'gelu_fast':
      return (x) => T.gelu(x, 'tanh');
    default:
      throw new EncoderConfigError(`unsupported hidden_act '${name}'`, path);
  }
}

/** (B, L, H*D) -> (B, H, L, D). */
export function splitHeads(x: T.Tensor, heads: number): T.Tensor {
  const [B, L, HD] = x.shape;
  return T.tidy(() => T.transpose(T.reshape(x, [B, L, heads, HD / heads]), 1, 2));
}
/** (B, H, L, D) -> (B, L, H*D). */
export function mergeHeads(x: T.Tensor): T.Tensor {
  const [B, H, L, D] = x.shape;
  return T.tidy(() => T.reshape(T.transpose(x, 1, 2), [B, L, H * D]));
}

export interface AttnWeights {
  q: T.Tensor;
  qb: T.Tensor | null;
  k: T.Tensor;
  kb: T.Tensor | null;
  v: T.Tensor;
  vb: T.Tensor | null;
  o: T.Tensor;
  ob: T.Tensor | null;
}

/** Multi-head self-attention with q/k/v/out projections (CLIP and SigLIP encoder layers). */
export function selfAttention(x: T.Tensor, w: AttnWeights, heads: number, opts: T.AttentionOptions = {}): T.Tensor {
  return T.tidy(() => {
    const q = splitHeads(T.linear(x, w.q, w.qb), heads);
    const k = splitHeads(T.linear(x, w.k, w.kb), heads);
    const v = splitHeads(T.linear(x, w.v, w.vb), heads);
    const a = T.scaledDotProductAttention(q, k, v, opts);
    return T.linear(mergeHeads(a), w.o, w.ob);
  });
}

/** Pre-LN transformer layer: h += attn(LN1(h)); h += fc2(act(fc1(LN2(h)))) (CLIP and SigLIP). */
export function preLnLayer(
  h: T.Tensor,
  p: (name: string) => T.Tensor,
  heads: number,
  eps: number,
  act: Activation,
  attnOpts: T.AttentionOptions = {},
): T.Tensor {
  return T.tidy(() => {
    const n1 = T.layerNorm(h, p('layer_norm1.weight'), p('layer_norm1.bias'), eps);
    const attn = selfAttention(
      n1,
      {
        q: p('self_attn.q_proj.weight'),
        qb: p('self_attn.q_proj.bias'),
        k: p('self_attn.k_proj.weight'),
        kb: p('self_attn.k_proj.bias'),
        v: p('self_attn.v_proj.weight'),
        vb: p('self_attn.v_proj.bias'),
        o: p('self_attn.out_proj.weight'),
        ob: p('self_attn.out_proj.bias'),
      },
      heads,
      attnOpts,
    );
    const h1 = T.add(h, attn);
    const n2 = T.layerNorm(h1, p('layer_norm2.weight'), p('layer_norm2.bias'), eps);
    const m = T.linear(act(T.linear(n2, p('mlp.fc1.weight'), p('mlp.fc1.bias'))), p('mlp.fc2.weight'), p('mlp.fc2.bias'));
    return T.add(h1, m);
  });
}

/** Shapes of one pre-LN layer's parameters (CLIP/SigLIP naming) under `prefix`. */
export function preLnLayerShapes(prefix: string, d: number, ff: number): [string, number[]][] {
  return [
    [`${prefix}layer_norm1.weight`, [d]],
    [`${prefix}layer_norm1.bias`, [d]],
    [`${prefix}layer_norm2.weight`, [d]],
    [`${prefix}layer_norm2.bias`, [d]],
    ...['q', 'k', 'v', 'out'].flatMap((n): [string, number[]][] => [
      [`${prefix}self_attn.${n}_proj.weight`, [d, d]],
      [`${prefix}self_attn.${n}_proj.bias`, [d]],
    ]),
    [`${prefix}mlp.fc1.weight`, [ff, d]],
    [`${prefix}mlp.fc1.bias`, [ff]],
    [`${prefix}mlp.fc2.weight`, [d, ff]],
    [`${prefix}mlp.fc2.bias`, [d]],
  ];
}
