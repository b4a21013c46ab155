/**
 * The building blocks of the HunyuanVideo causal VAE, as functions of (input, weights, prefix).
 * Intermediates are disposed as soon as the next one exists so a block's peak is a few activations.
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import type { VaeWeights } from './weights.js';

export const NORM_EPS = 1e-6;

export function param(w: VaeWeights, name: string): Tensor {
  const t = w.get(name);
  if (!t) throw new Error(`internal: weight '${name}' was not loaded`);
  return t;
}

/** Apply fns in order, disposing every intermediate result once the next exists (the input is left alone). */
export function pipe(x: Tensor, ...fns: ((t: Tensor) => Tensor)[]): Tensor {
  let cur = x;
  for (const f of fns) {
    const next = f(cur);
    if (cur !== x && cur !== next) cur.dispose();
    cur = next;
  }
  return cur;
}

/**
 * HunyuanVideoCausalConv3d: replicate padding of k-1 frames in front (none behind) and k//2 on each
 * spatial side, then a plain Conv3d without padding. Output frame t sees input frames t-k+1..t.
 */
export function causalConv3d(x: Tensor, w: VaeWeights, prefix: string, stride: readonly number[] = [1, 1, 1]): Tensor {
  const weight = param(w, `${prefix}.weight`), bias = param(w, `${prefix}.bias`);
  const [kt, kh, kw] = weight.shape.slice(2);
  if (kt === 1 && kh === 1 && kw === 1) return T.conv3d(x, weight, bias, { stride });
  const padded = T.pad(x, [[kt - 1, 0], [kh >> 1, kh >> 1], [kw >> 1, kw >> 1]], 'replicate');
  const y = T.conv3d(padded, weight, bias, { stride });
  padded.dispose();
  return y;
}

/** A plain 1x1x1 Conv3d (quant_conv / post_quant_conv). */
export const pointwiseConv = (x: Tensor, w: VaeWeights, prefix: string): Tensor => T.conv3d(x, param(w, `${prefix}.weight`), param(w, `${prefix}.bias`));

export const groupNorm = (x: Tensor, w: VaeWeights, prefix: string, groups: number): Tensor =>
  T.groupNorm(x, groups, param(w, `${prefix}.weight`), param(w, `${prefix}.bias`), NORM_EPS);

/** HunyuanVideoResnetBlockCausal3D: conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x). */
export function resnetBlock(x: Tensor, w: VaeWeights, p: string, groups: number): Tensor {
  const h = pipe(
    x,
    (t) => groupNorm(t, w, `${p}.norm1`, groups),
    T.silu,
    (t) => causalConv3d(t, w, `${p}.conv1.conv`),
    (t) => groupNorm(t, w, `${p}.norm2`, groups),
    T.silu,
    (t) => causalConv3d(t, w, `${p}.conv2.conv`),
  );
  const shortcut = w.has(`${p}.conv_shortcut.conv.weight`) ? causalConv3d(x, w, `${p}.conv_shortcut.conv`) : x;
  const out = T.add(h, shortcut);
  h.dispose();
  if (shortcut !== x) shortcut.dispose();
  return out;
}

/**
 * HunyuanVideoUpsampleCausal3D: frame 0 is upsampled spatially only, frames 1.. by (ft, fh, fw)
 * (nearest), concatenated on time, then a causal conv. T frames become 1 + ft(T-1).
 */
export function upsampleCausal(x: Tensor, w: VaeWeights, p: string, factor: readonly [number, number, number]): Tensor {
  const [ft, fh, fw] = factor;
  const frames = x.shape[2];
  const first = T.slice(x, 2, 0, 1);
  const up0 = T.upsampleNearest(first, [1, fh, fw]);
  first.dispose();
  let h = up0;
  if (frames > 1) {
    const rest = T.slice(x, 2, 1);
    const upRest = T.upsampleNearest(rest, [ft, fh, fw]);
    rest.dispose();
    h = T.cat([up0, upRest], 2);
    up0.dispose();
    upRest.dispose();
  }
  const y = causalConv3d(h, w, `${p}.conv.conv`);
  h.dispose();
  return y;
}

/**
 * The mid-block attention (diffusers Attention with group norm, one head of dim C, residual). Tokens are
 * all (t, h, w) positions; a token attends to every token of its own and earlier frames. That mask is
 * block-causal, so each frame's queries attend to the key prefix of frames 0..t without materialising an
 * L x L mask.
 */
/** Widest head the CUDA fused attention kernel takes (native/src/attention.cu; the real VAE's one head is 512 wide). */
export const FUSED_ATTENTION_MAX_HEAD_DIM = 512;

/**
 * softmax(q k^T / sqrt(D)) v on (B, H, L, D) tensors as two GEMMs and an f32 softmax, in query chunks that keep
 * the score matrix under `maxScoreElements`: for heads wider than the fused kernel takes. Same result as
 * scaledDotProductAttention (no mask; q is scaled first, so the half-precision GEMM sums O(1) products).
 */
export function explicitAttention(q: Tensor, k: Tensor, v: Tensor, maxScoreElements = 2 ** 25): Tensor {
  const [B, H, Lq, D] = q.shape;
  const Lk = k.shape[2];
  const rows = Math.max(1, Math.floor(maxScoreElements / (B * H * Lk)));
  const qs = T.mul(q, 1 / Math.sqrt(D));
  const chunks: Tensor[] = [];
  try {
    for (let r = 0; r < Lq; r += rows) {
      chunks.push(
        T.tidy(() => {
          const qc = rows >= Lq ? qs : T.slice(qs, 2, r, Math.min(Lq, r + rows));
          const scores = T.matmul(qc, k, { transB: true });
          const probs = T.softmax(scores.dtype === 'f32' ? scores : T.cast(scores, 'f32'), -1);
          return T.matmul(probs.dtype === q.dtype ? probs : T.cast(probs, q.dtype), v);
        }),
      );
    }
    if (chunks.length === 1) return chunks.pop()!;
    return T.cat(chunks, 2);
  } finally {
    qs.dispose();
    for (const c of chunks) c.dispose();
  }
}

/** The fused kernel where it takes the head width (and always on the CPU), explicit GEMMs otherwise. */
function attend(q: Tensor, k: Tensor, v: Tensor): Tensor {
  return q.device !== 'cpu' && q.shape[3] > FUSED_ATTENTION_MAX_HEAD_DIM ? explicitAttention(q, k, v) : T.scaledDotProductAttention(q, k, v);
}

export function midAttention(x: Tensor, w: VaeWeights, p: string, groups: number): Tensor {
  const [B, C, F, H, W] = x.shape;
  const hw = H * W, L = F * hw;
  const tokens = pipe(
    x,
    (t) => groupNorm(t, w, `${p}.group_norm`, groups), // same statistics as the reference's norm over (B, C, L)
    (t) => T.permute(t, [0, 2, 3, 4, 1]),
    (t) => T.reshape(t, [B, L, C]),
  );
  const proj = (name: string) => pipe(tokens, (t) => T.linear(t, param(w, `${p}.${name}.weight`), param(w, `${p}.${name}.bias`)), (t) => T.reshape(t, [B, 1, L, C]));
  const q = proj('to_q'), k = proj('to_k'), v = proj('to_v');
  tokens.dispose();
  const perFrame: Tensor[] = [];
  for (let f = 0; f < F; f++) {
    const qf = T.slice(q, 2, f * hw, (f + 1) * hw);
    const kf = T.slice(k, 2, 0, (f + 1) * hw);
    const vf = T.slice(v, 2, 0, (f + 1) * hw);
    perFrame.push(attend(qf, kf, vf));
    qf.dispose();
    kf.dispose();
    vf.dispose();
  }
  q.dispose();
  k.dispose();
  v.dispose();
  const attn = F === 1 ? perFrame[0] : T.cat(perFrame, 2);
  if (F > 1) for (const t of perFrame) t.dispose();
  const out = pipe(
    attn,
    (t) => T.reshape(t, [B, L, C]),
    (t) => T.linear(t, param(w, `${p}.to_out.0.weight`), param(w, `${p}.to_out.0.bias`)),
    (t) => T.reshape(t, [B, F, H, W, C]),
    (t) => T.permute(t, [0, 4, 1, 2, 3]),
    (t) => T.add(t, x),
  );
  attn.dispose();
  return out;
}

/** HunyuanVideoMidBlock3D: resnet, (attention, resnet). */
export function midBlock(x: Tensor, w: VaeWeights, p: string, groups: number, attention: boolean): Tensor {
  return pipe(
    x,
    (t) => resnetBlock(t, w, `${p}.resnets.0`, groups),
    (t) => (attention ? midAttention(t, w, `${p}.attentions.0`, groups) : t),
    (t) => resnetBlock(t, w, `${p}.resnets.1`, groups),
  );
}
