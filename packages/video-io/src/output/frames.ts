import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Tensor } from '@framepack/tensor-core';
import type { FrameSource } from './ffmpeg.js';

/**
 * Pixels (1, 3, T, H, W) in [-1, 1] -> RGB24 frames, as FramePack converts them:
 * clamp to [-1, 1], x * 127.5 + 127.5, truncated to uint8.
 */
export function pixelsToFrames(pixels: Tensor): FrameSource {
  if (pixels.ndim !== 5 || pixels.shape[0] !== 1 || pixels.shape[1] !== 3) throw new Error(`pixelsToFrames expects (1, 3, T, H, W), got [${pixels.shape}]`);
  const [, , T, H, W] = pixels.shape;
  const v = pixels.toFloat32Array();
  const plane = H * W;
  return {
    width: W,
    height: H,
    count: T,
    frame(t: number): Uint8Array {
      const out = new Uint8Array(plane * 3);
      for (let c = 0; c < 3; c++) {
        const base = (c * T + t) * plane;
        for (let i = 0; i < plane; i++) {
          const x = Math.min(1, Math.max(-1, v[base + i]));
          out[i * 3 + c] = Math.trunc(x * 127.5 + 127.5);
        }
      }
      return out;
    },
  };
}

/** Encode one RGB24 image as PNG. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/** Write frames as dir/frame_00000.png ...; returns the file paths. */
export function writePngFrames(dir: string, frames: FrameSource): string[] {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < frames.count; i++) {
    const p = join(dir, `frame_${String(i).padStart(5, '0')}.png`);
    writeFileSync(p, encodePng(frames.frame(i), frames.width, frames.height));
    paths.push(p);
  }
  return paths;
}
