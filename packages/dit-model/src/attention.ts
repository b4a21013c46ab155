import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';

/** (B, L, H*hd) -> (B, L, H, hd), a view. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, L, D] = x.shape;
  return T.reshape(x, [B, L, heads, D / heads]);
}

/**
 * Softmax attention on (B, L, H, hd) tensors (the reference's flash/sage layout), scale 1/sqrt(hd).
 * `mask` is bool, broadcastable to (B, H, Lq, Lk), true = may attend. Returns (B, L, H*hd).
 */
export function attentionBLHD(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null = null): Tensor {
  return T.tidy(() => {
    const [B, L, H, hd] = q.shape;
    // the Hopper kernel reads this layout in place; elsewhere tensor-core transposes
    return T.reshape(T.scaledDotProductAttentionBLHD(q, k, v, { mask }), [B, L, H * hd]);
  });
}

/** Per-head RMSNorm over hd (eps 1e-6) as FramePack patches it: normalise (rounded), then times the weight (rounded). */
export function headRmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  return T.tidy(() => T.mul(T.rmsNorm(x, null, eps), weight));
}

/** LayerNorm without affine (eps 1e-6) modulated by adaLN: LN(x) * (1 + scale) + shift. scale/shift (B, 1, D). */
export function modulate(x: Tensor, shift: Tensor, scale: Tensor): Tensor {
  return T.tidy(() => T.add(T.mul(T.layerNorm(x, null, null, 1e-6), T.add(scale, 1)), shift));
}

/** linear(SiLU(temb)) split into n chunks, each (B, 1, D): the adaLN modulation parameters. */
export function adaModulation(temb: Tensor, weight: Tensor, bias: Tensor, n: number): Tensor[] {
  return T.tidy(() => {
    const e = T.linear(T.silu(temb), weight, bias);
    const B = e.shape[0];
    return T.chunk(T.reshape(e, [B, 1, -1]), n, 2);
  });
}
