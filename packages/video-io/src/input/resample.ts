import { ImageReadError } from './errors.js';
import type { RgbImage } from './image.js';

/** Pillow's resampling filters (Image.Resampling). */
export type ResampleFilter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

interface Filter {
  support: number;
  f(x: number): number;
}
const sinc = (x: number) => {
  if (x === 0) return 1;
  const p = x * Math.PI;
  return Math.sin(p) / p;
};
// The kernels of Pillow's Resample.c (bicubic with a = -0.5, lanczos with 3 lobes).
const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, Filter> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, f: (x) => ((x = Math.abs(x)) < 1 ? 1 - x : 0) },
  hamming: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      const p = x * Math.PI;
      return (Math.sin(p) / p) * (0.54 + 0.46 * Math.cos(p));
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/** Fixed-point precision of Pillow's 8-bit resampling path. */
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

interface Coeffs {
  ksize: number;
  /** Integer (fixed-point) weights, outSize * ksize. */
  k: Int32Array;
  /** First input index and count per output index. */
  min: Int32Array;
  count: Int32Array;
}

/**
 * Per-output-pixel weights for resampling [in0, in1) of an axis of `inSize` onto `outSize` pixels: the kernel
 * is stretched by the downscale factor (antialiasing), weights are normalized to sum 1 in float64, then
 * rounded to fixed point. This is the arithmetic of Pillow's precompute_coeffs + normalize_coeffs_8bpc.
 */
function coefficients(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const k = new Int32Array(outSize * ksize);
  const min = new Int32Array(outSize), count = new Int32Array(outSize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    min[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, k, min, count };
}

const clip8 = (ss: number) => {
  const v = Math.floor(ss / ONE); // arithmetic shift
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** One separable pass along x (horizontal) or y over an interleaved 3-channel u8 image. */
function pass(src: Uint8Array, w: number, h: number, outLen: number, c: Coeffs, horizontal: boolean): Uint8Array {
  const ow = horizontal ? outLen : w, oh = horizontal ? h : outLen;
  const out = new Uint8Array(ow * oh * 3);
  const half = 2 ** (PRECISION_BITS - 1);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const kb = o * c.ksize, m = c.min[o], n = c.count[o];
      for (let ch = 0; ch < 3; ch++) {
        let ss = half;
        if (horizontal) for (let i = 0; i < n; i++) ss += src[(y * w + m + i) * 3 + ch] * c.k[kb + i];
        else for (let i = 0; i < n; i++) ss += src[((m + i) * w + x) * 3 + ch] * c.k[kb + i];
        out[(y * ow + x) * 3 + ch] = clip8(ss);
      }
    }
  return out;
}

/**
 * Resize an RGB u8 image the way Pillow's Image.resize does for 8-bit images (no reducing_gap): a horizontal
 * then a vertical pass of the filter with fixed-point weights, each rounded and clipped to u8. Same size
 * returns a copy.
 */
export function resizeImage(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new ImageReadError(`cannot resize to ${width}x${height}: sizes must be positive integers`);
  if (filter === 'nearest') {
    const out = new Uint8Array(width * height * 3);
    const sx = img.width / width, sy = img.height / height;
    for (let y = 0; y < height; y++) {
      const yi = Math.min(Math.floor((y + 0.5) * sy), img.height - 1);
      for (let x = 0; x < width; x++) {
        const xi = Math.min(Math.floor((x + 0.5) * sx), img.width - 1);
        for (let ch = 0; ch < 3; ch++) out[(y * width + x) * 3 + ch] = img.data[(yi * img.width + xi) * 3 + ch];
      }
    }
    return { width, height, data: out };
  }
  const f = FILTERS[filter];
  if (!f) throw new ImageReadError(`unknown resampling filter '${filter}'`);
  let data = img.data, w = img.width;
  if (width !== img.width) {
    data = pass(data, w, img.height, width, coefficients(img.width, 0, img.width, width, f), true);
    w = width;
  }
  if (height !== img.height) data = pass(data, w, img.height, height, coefficients(img.height, 0, img.height, height, f), false);
  return { width, height, data: data === img.data ? img.data.slice() : data };
}
