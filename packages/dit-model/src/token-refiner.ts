import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { attentionBLHD, splitHeads } from './attention.js';
import { embedTimestep, mlpEmbedder } from './embeddings.js';
import type { ParamScope } from './weights.js';

/**
 * context_embedder (HunyuanVideoTokenRefiner): LLaMA features (B, L, textDim) + their mask -> text tokens
 * (B, L, D), refined by `numLayers` masked self-attention blocks conditioned on timestep + pooled text.
 */
export function tokenRefiner(p: ParamScope, x: Tensor, timestep: Tensor, mask: Tensor | null, heads: number, numLayers: number): Tensor {
  return T.tidy(() => {
    const pooled = maskedMean(x, mask);
    const tt = p.at('time_text_embed');
    const temb = T.add(embedTimestep(tt.at('timestep_embedder'), timestep, x.dtype), mlpEmbedder(tt.at('text_embedder'), pooled));
    let h = T.linear(x, p.get('proj_in.weight'), p.get('proj_in.bias'));
    const attnMask = mask ? refinerMask(mask) : null;
    for (let i = 0; i < numLayers; i++) h = refinerBlock(p.at(`token_refiner.refiner_blocks.${i}`), h, temb, attnMask, heads);
    return h;
  });
}

/** Mean over valid tokens, computed in f32 (x * float(mask) promotes) and cast back: (B, L, C) -> (B, C). */
export function maskedMean(x: Tensor, mask: Tensor | null): Tensor {
  return T.tidy(() => {
    if (!mask) return T.mean(x, 1);
    const m = T.unsqueeze(T.cast(mask, 'f32'), 2);
    const s = T.sum(T.mul(T.cast(x, 'f32'), m), 1);
    return T.cast(T.div(s, T.sum(m, 1)), x.dtype);
  });
}

/**
 * Self-attention mask of the refiner: M[b, i, j] = m[b, i] && m[b, j], with key 0 always allowed so that
 * padded query rows still attend somewhere (the reference forces column 0 to True). (B, 1, L, L) bool.
 */
export function refinerMask(mask: Tensor): Tensor {
  return T.tidy(() => {
    const [B, L] = mask.shape;
    const m = T.cast(mask, 'f32');
    const both = T.mul(T.reshape(m, [B, 1, L, 1]), T.reshape(m, [B, 1, 1, L]));
    const col0 = T.tensor(Array.from({ length: L }, (_, j) => (j === 0 ? 1 : 0)), [1, 1, 1, L], { device: mask.device });
    return T.gt(T.maximum(both, col0), 0.5);
  });
}

/** HunyuanVideoIndividualTokenRefinerBlock: pre-LN masked MHA and a SiLU MLP, both gated by temb. */
export function refinerBlock(p: ParamScope, h: Tensor, temb: Tensor, mask: Tensor | null, heads: number): Tensor {
  return T.tidy(() => {
    const a = p.at('attn');
    const n1 = T.layerNorm(h, p.get('norm1.weight'), p.get('norm1.bias'), 1e-6);
    const q = splitHeads(T.linear(n1, a.get('to_q.weight'), a.get('to_q.bias')), heads);
    const k = splitHeads(T.linear(n1, a.get('to_k.weight'), a.get('to_k.bias')), heads);
    const v = splitHeads(T.linear(n1, a.get('to_v.weight'), a.get('to_v.bias')), heads);
    const attn = T.linear(attentionBLHD(q, k, v, mask), a.get('to_out.0.weight'), a.get('to_out.0.bias'));
    const gates = T.linear(T.silu(temb), p.get('norm_out.linear.weight'), p.get('norm_out.linear.bias'));
    const B = gates.shape[0];
    const [gateMsa, gateMlp] = T.chunk(T.reshape(gates, [B, 1, -1]), 2, 2);
    const h1 = T.add(h, T.mul(attn, gateMsa));
    const n2 = T.layerNorm(h1, p.get('norm2.weight'), p.get('norm2.bias'), 1e-6);
    const ff = T.linear(T.silu(T.linear(n2, p.get('ff.net.0.proj.weight'), p.get('ff.net.0.proj.bias'))), p.get('ff.net.2.weight'), p.get('ff.net.2.bias'));
    return T.add(h1, T.mul(ff, gateMlp));
  });
}
