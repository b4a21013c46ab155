import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ImageReadError } from './errors.js';
import { applyOrientation, jpegExifOrientation } from './orientation.js';

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B (numpy HWC uint8). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
function sniff(b: Uint8Array): 'png' | 'jpeg' | string {
  if (b.length >= 8 && PNG_SIG.every((v, i) => b[i] === v)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  const ascii = String.fromCharCode(...b.subarray(0, 12));
  if (ascii.startsWith('GIF8')) return 'GIF';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'WebP';
  if (ascii.startsWith('BM')) return 'BMP';
  if (ascii.slice(4, 12).startsWith('ftypavif') || ascii.slice(4, 12).startsWith('ftyphei')) return 'AVIF/HEIF';
  return 'unknown';
}

/** RGBA (or any 4-channel) -> RGB by dropping alpha, as PIL's convert('RGB') does (no compositing). */
function dropAlpha(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < w * h; i++, j += 4) {
    out[i * 3] = rgba[j];
    out[i * 3 + 1] = rgba[j + 1];
    out[i * 3 + 2] = rgba[j + 2];
  }
  return out;
}

type TurboDecode = (b: Uint8Array) => { width: number; height: number; data: Uint8ClampedArray };
let turbo: TurboDecode | null | undefined;
/**
 * The wasm decoder, loaded on first use: it reads its .wasm file beside its own module, so a bundle that does
 * not ship it (or a platform without WebAssembly) falls back to jpeg-js instead of failing at import.
 */
function turboDecoder(): TurboDecode | null {
  if (turbo === undefined) {
    try {
      const name = '@cwasm/jpeg-turbo'; // not a literal require: bundlers leave it to the runtime
      const req = typeof require === 'function' ? require : createRequire(import.meta.url);
      turbo = (req(name) as { decode: TurboDecode }).decode;
    } catch {
      turbo = null;
    }
  }
  return turbo;
}

/** Which decoder JPEGs go through first here: 'libjpeg-turbo' (PIL-exact) or 'jpeg-js' (when the wasm is missing). */
export function jpegDecoder(): 'libjpeg-turbo' | 'jpeg-js' {
  return turboDecoder() ? 'libjpeg-turbo' : 'jpeg-js';
}

/**
 * JPEG through libjpeg-turbo (WebAssembly, default settings: islow IDCT, fancy chroma upsampling), which is what
 * PIL uses, so the pixels match the reference bit for bit. CMYK/YCCK files (which turbojpeg cannot convert
 * to RGB) and files it rejects go to jpeg-js, a pure-JS decoder.
 */
function decodeJpeg(bytes: Uint8Array, path?: string): RgbImage {
  let turboError = 'libjpeg-turbo (@cwasm/jpeg-turbo) is not available';
  const turboDecode = turboDecoder();
  if (turboDecode) {
    try {
      const img = turboDecode(bytes);
      if (img.width > 0 && img.height > 0) return { width: img.width, height: img.height, data: dropAlpha(new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.width, img.height) };
      turboError = 'no pixels';
    } catch (e) {
      turboError = (e as Error).message;
    }
  }
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 200, maxMemoryUsageInMB: 2048 });
  } catch (e) {
    throw new ImageReadError(`corrupt or unsupported JPEG (${turboError}; ${(e as Error).message})`, path);
  }
  if (!img.width || !img.height || img.data.length !== img.width * img.height * 3) throw new ImageReadError('the JPEG decoded to no usable pixels', path);
  return { width: img.width, height: img.height, data: img.data };
}

/**
 * Decode a PNG or JPEG (bytes or a file path) into RGB. Grayscale and palette images are expanded to RGB,
 * alpha is dropped (PIL convert('RGB') semantics). A JPEG's EXIF orientation is applied (as the reference UI's
 * image upload does with ImageOps.exif_transpose) unless `exifTranspose: false`. Anything else fails with an
 * ImageReadError naming the problem.
 */
export function readImage(source: string | Uint8Array, opts: { exifTranspose?: boolean } = {}): RgbImage {
  const path = typeof source === 'string' ? source : undefined;
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    if (!existsSync(source)) throw new ImageReadError('no such file', source);
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new ImageReadError(`cannot read the file (${(e as Error).message})`, source);
    }
  } else bytes = source;
  if (bytes.length === 0) throw new ImageReadError('the image is empty (0 bytes)', path);
  const kind = sniff(bytes);
  if (kind === 'png') {
    let png: { width: number; height: number; data: Uint8Array };
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new ImageReadError(`corrupt or unsupported PNG (${(e as Error).message})`, path);
    }
    if (!png.width || !png.height) throw new ImageReadError('the PNG has no pixels', path);
    return { width: png.width, height: png.height, data: dropAlpha(png.data, png.width, png.height) };
  }
  if (kind === 'jpeg') {
    const img = decodeJpeg(bytes, path);
    return opts.exifTranspose === false ? img : applyOrientation(img, jpegExifOrientation(bytes));
  }
  throw new ImageReadError(`unsupported image format (${kind}); use PNG or JPEG`, path);
}

/**
 * Resolution buckets (height, width) per base resolution, FramePack-Studio's bucket_tools table (the
 * upstream FramePack table is the 640 row without (640, 640)).
 */
export const BUCKET_OPTIONS: ReadonlyMap<number, readonly (readonly [number, number])[]> = new Map([
  [128, [[96, 160], [112, 144], [128, 128], [144, 112], [160, 96]]],
  [256, [[192, 320], [224, 288], [256, 256], [288, 224], [320, 192]]],
  [384, [[256, 512], [320, 448], [384, 384], [448, 320], [512, 256]]],
  [512, [[352, 704], [384, 640], [448, 576], [512, 512], [576, 448], [640, 384], [704, 352]]],
  [640, [[416, 960], [448, 864], [480, 832], [512, 768], [544, 704], [576, 672], [608, 640], [640, 640], [640, 608], [672, 576], [704, 544], [768, 512], [832, 480], [864, 448], [960, 416]]],
  [768, [[512, 1024], [576, 896], [640, 832], [704, 768], [768, 768], [768, 704], [832, 640], [896, 576], [1024, 512]]],
] as [number, [number, number][]][]);

/**
 * find_nearest_bucket(h, w, resolution): the table row for `resolution` (truncated to an integer; when it is
 * not a key, the closest key, ties to the smaller), then the bucket whose aspect bw/bh is closest to w/h
 * (ties to the earlier bucket). Returns [height, width].
 */
export function findNearestBucket(h: number, w: number, resolution = 640): [number, number] {
  if (!(h > 0) || !(w > 0)) throw new ImageReadError(`image size ${w}x${h} is not positive`);
  if (!Number.isFinite(resolution) || resolution <= 0) throw new ImageReadError(`resolution must be a positive number, got ${resolution}`);
  const asked = Math.trunc(resolution);
  let res = asked;
  if (!BUCKET_OPTIONS.has(asked)) {
    // keys are in ascending order, so a strict < keeps the smaller key on a tie
    let best = Infinity;
    for (const k of BUCKET_OPTIONS.keys())
      if (Math.abs(k - asked) < best) {
        best = Math.abs(k - asked);
        res = k;
      }
  }
  const aspect = w / h;
  let bestDiff = Infinity;
  let bucket: [number, number] = [0, 0];
  for (const [bh, bw] of BUCKET_OPTIONS.get(res)!) {
    const d = Math.abs(bw / bh - aspect);
    if (d < bestDiff) {
      bestDiff = d;
      bucket = [bh, bw];
    }
  }
  return bucket;
}

/** Python's round() on a float: halves go to the even neighbour. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** Copy the box [x0, x0+w) x [y0, y0+h) (inside the image). */
export function cropImage(img: RgbImage, x0: number, y0: number, w: number, h: number): RgbImage {
  if (x0 < 0 || y0 < 0 || x0 + w > img.width || y0 + h > img.height || w < 1 || h < 1) throw new ImageReadError(`crop box ${w}x${h} at (${x0}, ${y0}) is outside the ${img.width}x${img.height} image`);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3), y * w * 3);
  return { width: w, height: h, data: out };
}
