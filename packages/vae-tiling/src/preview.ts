/**
 * FramePack's fast latent -> RGB preview (`vae_decode_fake`): a fixed 1x1x1 projection of the 16 latent
 * channels to RGB plus a bias, clamped to [0, 1]. The factors are the ComfyUI HunyuanVideo ones that
 * FramePack uses (rows = latent channels, columns = R, G, B).
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { VaeInputError } from './errors.js';

export const LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = Object.freeze([
  [-0.0395, -0.0331, 0.0445],
  [0.0696, 0.0795, 0.0518],
  [0.0135, -0.0945, -0.0282],
  [0.0108, -0.025, -0.0765],
  [-0.0209, 0.0032, 0.0224],
  [-0.0804, -0.0254, -0.0639],
  [-0.0991, 0.0271, -0.0669],
  [-0.0646, -0.0422, -0.04],
  [-0.0696, -0.0595, -0.0894],
  [-0.0799, -0.0208, -0.0375],
  [0.1166, 0.1627, 0.0962],
  [0.1165, 0.0432, 0.0407],
  [-0.2315, -0.192, -0.1355],
  [-0.027, 0.0401, -0.0821],
  [-0.0616, -0.0997, -0.0727],
  [0.0249, -0.0469, -0.1703],
] as const);
export const LATENT_RGB_BIAS: readonly [number, number, number] = Object.freeze([0.0259, -0.0192, -0.0761] as const);

function checkLatents(latents: Tensor, what: string): void {
  if (latents.ndim !== 5) throw new VaeInputError(`${what} needs latents shaped (B, 16, T, h, w), got [${latents.shape}]`);
  if (latents.shape[1] !== LATENT_RGB_FACTORS.length)
    throw new VaeInputError(`${what}: the preview factors are for ${LATENT_RGB_FACTORS.length} latent channels, got ${latents.shape[1]} (shape [${latents.shape}])`);
  if (latents.dtype !== 'f32' && latents.dtype !== 'f16' && latents.dtype !== 'bf16') throw new VaeInputError(`${what} needs floating-point latents, got ${latents.dtype}`);
}

/**
 * Latents (B, 16, T, h, w) as FramePack holds them (scaled by the VAE scaling factor; typically the sampler's
 * x0 prediction) -> a rough RGB video (B, 3, T, h, w) in [0, 1], same dtype and device as the input.
 */
export function previewRgb(latents: Tensor): Tensor {
  checkLatents(latents, 'previewRgb');
  return T.tidy(() => {
    const opts = { dtype: latents.dtype, device: latents.device };
    // conv3d weight (3, 16, 1, 1, 1) = the factor matrix transposed
    const w = T.tensor(
      [0, 1, 2].flatMap((c) => LATENT_RGB_FACTORS.map((row) => row[c])),
      [3, LATENT_RGB_FACTORS.length, 1, 1, 1],
      opts,
    );
    const b = T.tensor([...LATENT_RGB_BIAS], [3], opts);
    return T.clamp(T.conv3d(latents, w, b), 0, 1);
  });
}

/** An 8-bit RGB picture, row-major, 3 bytes per pixel. */
export interface PreviewImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * The preview as FramePack shows it: `uint8(clip(rgb * 255, 0, 255))` (truncating) laid out
 * 'b c t h w -> (b h) (t w) c': batch rows stacked vertically, frames side by side.
 */
export function previewImage(latents: Tensor): PreviewImage {
  const rgb = previewRgb(latents);
  const [B, , F, h, w] = rgb.shape;
  const v = rgb.toFloat32Array();
  rgb.dispose();
  const width = F * w, height = B * h;
  const data = new Uint8Array(width * height * 3);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < 3; c++)
      for (let f = 0; f < F; f++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const s = Math.min(255, Math.max(0, Math.fround(v[(((b * 3 + c) * F + f) * h + y) * w + x] * 255)));
            data[((b * h + y) * width + f * w + x) * 3 + c] = Math.trunc(s);
          }
  return { width, height, data };
}
