import * as T from '@framepack/tensor-core';
import { ImageReadError } from './errors.js';
import { cropImage, findNearestBucket, pyRound, readImage, type RgbImage } from './image.js';
import { resizeImage, type ResampleFilter } from './resample.js';

/**
 * FramePack's resize_and_center_crop: scale by max(tw/w, th/h) so the image covers the target, resize with
 * Lanczos (Pillow arithmetic), then crop the centre. An image already at the target size is returned as is.
 * The crop box edges are rounded like Pillow's crop (Python round); the box is always exactly tw x th.
 */
export function resizeAndCenterCrop(img: RgbImage, targetWidth: number, targetHeight: number, filter: ResampleFilter = 'lanczos'): RgbImage {
  if (!Number.isInteger(targetWidth) || !Number.isInteger(targetHeight) || targetWidth < 1 || targetHeight < 1)
    throw new ImageReadError(`target size ${targetWidth}x${targetHeight} must be positive integers`);
  if (img.width === targetWidth && img.height === targetHeight) return img;
  const s = Math.max(targetWidth / img.width, targetHeight / img.height);
  const rw = pyRound(img.width * s), rh = pyRound(img.height * s);
  const resized = resizeImage(img, rw, rh, filter);
  const left = pyRound((rw - targetWidth) / 2), top = pyRound((rh - targetHeight) / 2);
  return cropImage(resized, left, top, targetWidth, targetHeight);
}

/**
 * RGB u8 image -> (1, 3, 1, H, W) f32 in [-1, 1] (v / 127.5 - 1, FramePack's conversion), optionally cast
 * (e.g. f16 for the VAE) and placed on a device.
 */
export function imageToTensor(img: RgbImage, opts: { dtype?: T.DType; device?: T.DeviceType } = {}): T.Tensor {
  const { width: W, height: H, data } = img;
  if (data.length !== W * H * 3) throw new ImageReadError(`image data has ${data.length} bytes, expected ${W}x${H}x3`);
  const out = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) out[c * H * W + i] = Math.fround(data[i * 3 + c] / 127.5) - 1;
  return T.tidy(() => {
    const t = T.tensor(out, [1, 3, 1, H, W], { device: opts.device ?? 'cpu' });
    return opts.dtype && opts.dtype !== 'f32' ? T.cast(t, opts.dtype) : t;
  });
}

export interface PreparedImage {
  /** The bucket-sized RGB image (what FramePack saves as the job's input PNG and gives SigLIP). */
  image: RgbImage;
  /** [height, width]. */
  bucket: [number, number];
  /** (1, 3, 1, H, W) in [-1, 1], the VAE input. */
  pixels: T.Tensor;
}

/** Read an image, pick its bucket at `resolution`, resize + centre-crop to it and convert to the VAE input. */
export function prepareInputImage(source: string | Uint8Array | RgbImage, opts: { resolution?: number; dtype?: T.DType; device?: T.DeviceType } = {}): PreparedImage {
  const img = typeof source === 'object' && 'data' in source && 'width' in source ? source : readImage(source as string | Uint8Array);
  const bucket = findNearestBucket(img.height, img.width, opts.resolution ?? 640);
  const image = resizeAndCenterCrop(img, bucket[1], bucket[0]);
  return { image, bucket, pixels: imageToTensor(image, opts) };
}
