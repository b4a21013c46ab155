import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import type { ParamScope } from './weights.js';

/**
 * Sinusoidal timestep features (diffusers Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)),
 * in f32: freq_j = exp(-ln(10000) * j / 128), features [cos(t*freq), sin(t*freq)]. t: (B) -> (B, 256) f32.
 */
export function timestepProjection(t: Tensor, channels = 256): Tensor {
  return T.tidy(() => {
    const half = channels / 2;
    const tf = T.cast(t, 'f32');
    // the reference multiplies by -ln(10000) as an f32 scalar; with arguments up to ~1e4 rad (guidance 10 ->
    // 1e4) one ulp of a frequency moves cos/sin visibly, so the rounding is reproduced exactly
    const exponent = T.div(T.mul(T.arange(0, half, 1, { device: t.device }), Math.fround(-Math.log(10000))), half);
    const freqs = T.exp(exponent);
    const args = T.mul(T.reshape(tf, [tf.numel, 1]), T.reshape(freqs, [1, half]));
    return T.cat([T.cos(args), T.sin(args)], 1);
  });
}

/** linear_2(SiLU(linear_1(x))): diffusers TimestepEmbedding and PixArtAlphaTextProjection(act 'silu') alike. */
export function mlpEmbedder(p: ParamScope, x: Tensor): Tensor {
  return T.tidy(() => {
    const h = T.silu(T.linear(x, p.get('linear_1.weight'), p.get('linear_1.bias')));
    return T.linear(h, p.get('linear_2.weight'), p.get('linear_2.bias'));
  });
}

/**
 * Timestep features in the model dtype. The value is used as given (the reference's time_proj reads the
 * timestep tensor as f32 whatever the model dtype): rounding sigma*1000 or gs*1000 to bf16 as FramePack's
 * pipeline does is the caller's choice, not the model's.
 */
export function embedTimestep(p: ParamScope, t: Tensor, dtype: Tensor['dtype']): Tensor {
  return T.tidy(() => mlpEmbedder(p, T.cast(timestepProjection(t), dtype)));
}

/** time_text_embed: (timestep emb + guidance emb) + pooled-text emb -> temb (B, D), the conditioning of every adaLN. */
export function timeTextEmbed(p: ParamScope, timestep: Tensor, guidance: Tensor, pooled: Tensor): Tensor {
  return T.tidy(() => {
    const dtype = pooled.dtype;
    const tg = T.add(embedTimestep(p.at('timestep_embedder'), timestep, dtype), embedTimestep(p.at('guidance_embedder'), guidance, dtype));
    return T.add(tg, mlpEmbedder(p.at('text_embedder'), pooled));
  });
}

/**
 * A Conv3d with kernel = stride = `patch` as patchify + GEMM: (B, C, T, H, W) -> tokens (B, T'*H'*W', D) in
 * (t, h, w) order, the layout of the reference's conv output flattened and transposed. With `replicatePad`
 * the input is first padded at the end of T, H, W up to multiples of the patch (pad_for_3d_conv).
 */
export function patchEmbed(p: ParamScope, x: Tensor, patch: readonly [number, number, number], replicatePad = false): Tensor {
  return T.tidy(() => {
    let input = x;
    if (replicatePad) {
      const [, , t, h, w] = x.shape;
      const pads = [t, h, w].map((d, i) => [0, (patch[i] - (d % patch[i])) % patch[i]] as [number, number]);
      if (pads.some(([, a]) => a > 0)) input = T.pad(x, pads, 'replicate');
    }
    const weight = p.get('weight');
    const tokens = T.patchify(input, [patch[0], patch[1], patch[2]]);
    return T.linear(tokens, T.reshape(weight, [weight.shape[0], -1]), p.get('bias'));
  });
}

/** ClipVisionProjection: down(SiLU(up(x))), SigLIP tokens (B, N, 1152) -> (B, N, D). */
export function imageProjection(p: ParamScope, x: Tensor): Tensor {
  return T.tidy(() => T.linear(T.silu(T.linear(x, p.get('up.weight'), p.get('up.bias'))), p.get('down.weight'), p.get('down.bias')));
}
