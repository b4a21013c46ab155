import type { Tensor } from '@framepack/tensor-core';

/** A preview (1, 3, t, h, w) in [0, 1] -> one RGB image with the frames side by side (FramePack's layout). */
export function previewToRgb(preview: Tensor): { width: number; height: number; data: Uint8Array } {
  const [, C, t, h, w] = preview.shape;
  if (preview.ndim !== 5 || C !== 3) throw new Error(`preview must be (1, 3, t, h, w), got [${preview.shape}]`);
  const v = preview.toFloat32Array();
  const W = t * w;
  const data = new Uint8Array(h * W * 3);
  for (let f = 0; f < t; f++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          const x01 = Math.min(1, Math.max(0, v[((c * t + f) * h + y) * w + x]));
          data[(y * W + f * w + x) * 3 + c] = Math.trunc(x01 * 255);
        }
  return { width: W, height: h, data };
}
