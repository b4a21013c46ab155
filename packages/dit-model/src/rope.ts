import * as T from '@framepack/tensor-core';
import type { DeviceType, Tensor } from '@framepack/tensor-core';

/**
 * 3-D rotary position tables of the packed DiT (HunyuanVideoRotaryPosEmbed), all in f32.
 *
 * A table is channels-last: (B, T, H, W, 2*headDim) = [cosT, cosY, cosX, sinT, sinY, sinX] with every
 * frequency repeated twice (interleaved pairs), so flattening the grid gives the per-token table
 * (B, T*H*W, 2*headDim) in the same t-major token order as the patch embedders.
 */
export interface RopeSpec {
  axesDim: readonly [number, number, number];
  theta: number;
}

/** Inverse frequencies of one axis, each repeated twice: (dim) = [f0, f0, f1, f1, ...], f_k = 1 / theta^(2k/dim). */
export function axisFrequencies(dim: number, theta: number, device: DeviceType = 'cpu'): Tensor {
  return T.tidy(() => {
    const exponent = T.div(T.arange(0, dim, 2, { device }), dim);
    const inv = T.reciprocal(T.pow(T.full([dim / 2], theta, { device }), exponent));
    return T.reshape(T.stack([inv, inv], 1), [dim]);
  });
}

/**
 * The table for one group of tokens: frames at `frameIndices` (one row of positions per batch item) on a
 * height x width grid of rows/columns 0..h-1 / 0..w-1. Returns (B, T, h, w, 2*headDim) f32.
 */
export function ropeGrid(spec: RopeSpec, frameIndices: readonly (readonly number[])[], height: number, width: number, device: DeviceType = 'cpu'): Tensor {
  return T.tidy(() => {
    const [dt, dy, dx] = spec.axesDim;
    const fT = axisFrequencies(dt, spec.theta, device);
    const fY = axisFrequencies(dy, spec.theta, device);
    const fX = axisFrequencies(dx, spec.theta, device);
    const rows = frameIndices.map((frames) => {
      const nT = frames.length;
      // meshgrid ('ij') of (frame, row, column) positions, each (T, h, w, 1)
      const zeros = T.zeros([nT, height, width, 1], { device });
      const gT = T.add(zeros, T.tensor(frames, [nT, 1, 1, 1], { device }));
      const gY = T.add(zeros, T.reshape(T.arange(0, height, 1, { device }), [1, height, 1, 1]));
      const gX = T.add(zeros, T.reshape(T.arange(0, width, 1, { device }), [1, 1, width, 1]));
      const aT = T.mul(gT, fT), aY = T.mul(gY, fY), aX = T.mul(gX, fX);
      return T.cat([T.cos(aT), T.cos(aY), T.cos(aX), T.sin(aT), T.sin(aY), T.sin(aX)], 3);
    });
    return T.stack(rows, 0);
  });
}

/**
 * The reference's "centre down-sample" of a table for the 2x/4x clean latents: replicate-pad T, h and w
 * at the end up to multiples of the kernel, then average (kernel = stride) -- cos/sin values are averaged,
 * not angles. (B, T, h, w, C) -> (B, ceil(T/kt), ceil(h/kh), ceil(w/kw), C).
 */
export function poolRopeGrid(table: Tensor, kernel: readonly [number, number, number]): Tensor {
  return T.tidy(() => {
    const [B, nT, h, w, C] = table.shape;
    const [kt, kh, kw] = kernel;
    const padT = (kt - (nT % kt)) % kt, padH = (kh - (h % kh)) % kh, padW = (kw - (w % kw)) % kw;
    const padded = T.pad(table, [[0, 0], [0, padT], [0, padH], [0, padW], [0, 0]], 'replicate');
    const [pT, pH, pW] = [(nT + padT) / kt, (h + padH) / kh, (w + padW) / kw];
    const blocks = T.reshape(padded, [B, pT, kt, pH, kh, pW, kw, C]);
    // sum over the kernel then divide by its volume, as avg_pool3d does
    const s = T.sum(T.sum(T.sum(blocks, 6), 4), 2);
    return T.div(s, kt * kh * kw);
  });
}

/** A per-token table (B, L, 2D) (or a grid (B, T, h, w, 2D)) -> cos and sin, each (B, L, 1, D): broadcast over the heads of (B, L, H, D). */
export function ropeCosSin(table: Tensor): { cos: Tensor; sin: Tensor } {
  return T.tidy(() => {
    const C = table.shape[table.ndim - 1];
    const B = table.shape[0];
    const flat = T.reshape(table, [B, -1, 1, C]);
    return { cos: T.slice(flat, 3, 0, C / 2), sin: T.slice(flat, 3, C / 2, C) };
  });
}

/**
 * Rotate q or k (B, L, H, D) with tables (B|1, L, 1, D), pairs (2i, 2i+1) as the reference's
 * apply_rotary_emb_transposed: computed in f32 and rounded to x's dtype once.
 */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  if (x.dtype === 'f32') return T.rope(x, cos, sin, 'interleaved');
  return T.tidy(() => T.cast(T.rope(T.cast(x, 'f32'), cos, sin, 'interleaved'), x.dtype));
}
