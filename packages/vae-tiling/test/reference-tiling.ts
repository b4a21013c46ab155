/**
 * An independent, deliberately literal model of diffusers 0.33.1's tiled decode/encode for tests: every tile is
 * run first, then tiles are blended in place on host arrays with explicit loops (blend_v, blend_h, blend_t),
 * cropped and concatenated, exactly in the reference's order. It shares nothing with src/tiling.ts except the
 * per-tile network call.
 */
import * as T from '@framepack/tensor-core';
import type { TilingOptions } from '@framepack/vae-tiling';

/** A 5-d host array (B, C, F, H, W). */
class Arr {
  constructor(
    public shape: number[],
    public data: Float32Array,
  ) {}
  static of(t: T.Tensor): Arr {
    return new Arr([...t.shape], t.toFloat32Array());
  }
  idx(i: number[]): number {
    let o = 0;
    for (let d = 0; d < 5; d++) o = o * this.shape[d] + i[d];
    return o;
  }
  /** Sub-box [lo, hi) per axis (hi clipped), copied. */
  sub(ranges: ([number, number] | null)[]): Arr {
    const r = this.shape.map((s, d) => (ranges[d] ? [ranges[d]![0], Math.min(ranges[d]![1], s)] : [0, s]));
    const shape = r.map(([a, b]) => Math.max(0, b - a));
    const out = new Arr(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    forEach(shape, (i) => {
      out.data[out.idx(i)] = this.data[this.idx(i.map((v, d) => v + r[d][0]))];
    });
    return out;
  }
}
function forEach(shape: number[], fn: (i: number[]) => void): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const i = [0, 0, 0, 0, 0];
  for (let k = 0; k < n; k++) {
    fn(i);
    for (let d = 4; d >= 0 && ++i[d] === shape[d]; d--) i[d] = 0;
  }
}
/** b[.., y, ..] = a[.., -e + y, ..] * (1 - y/e) + b[.., y, ..] * (y/e) for y < e along `axis` (in place on b). */
function blend(a: Arr, b: Arr, axis: number, extent: number): Arr {
  const e = Math.min(a.shape[axis], b.shape[axis], extent);
  for (let y = 0; y < e; y++) {
    const bShape = [...b.shape];
    bShape[axis] = 1;
    forEach(bShape, (i) => {
      const bi = [...i];
      bi[axis] = y;
      const ai = [...i];
      ai[axis] = a.shape[axis] - e + y;
      b.data[b.idx(bi)] = a.data[a.idx(ai)] * (1 - y / e) + b.data[b.idx(bi)] * (y / e);
    });
  }
  return b;
}
function cat(xs: Arr[], axis: number): Arr {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const out = new Arr(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  let off = 0;
  for (const x of xs) {
    forEach(x.shape, (i) => {
      const o = [...i];
      o[axis] += off;
      out.data[out.idx(o)] = x.data[x.idx(i)];
    });
    off += x.shape[axis];
  }
  return out;
}
const box = (t: T.Tensor, ranges: ([number, number] | null)[]): T.Tensor =>
  T.tidy(() => {
    let x = t;
    ranges.forEach((r, d) => {
      if (r) x = T.slice(x, d, r[0], r[1]);
    });
    return T.clone(x);
  });

type Net = (x: T.Tensor) => T.Tensor;
const run = (net: Net, x: T.Tensor): Arr => {
  const y = net(x);
  const a = Arr.of(y);
  y.dispose();
  return a;
};

/** Spatial tiling as in tiled_decode / tiled_encode, parameterised by units. */
function tiled(x: T.Tensor, net: Net, p: { min: [number, number]; step: [number, number]; keep: [number, number]; blend: [number, number]; out: [number, number] }): Arr {
  const [, , , h, w] = x.shape;
  const rows: Arr[][] = [];
  for (let i = 0; i < h; i += p.step[0]) {
    const row: Arr[] = [];
    for (let j = 0; j < w; j += p.step[1]) {
      const tile = box(x, [null, null, null, [i, i + p.min[0]], [j, j + p.min[1]]]);
      row.push(run(net, tile));
      tile.dispose();
    }
    rows.push(row);
  }
  const resultRows: Arr[] = [];
  rows.forEach((row, i) => {
    const resultRow: Arr[] = [];
    row.forEach((tile, j) => {
      if (i > 0) tile = blend(rows[i - 1][j], tile, 3, p.blend[0]);
      if (j > 0) tile = blend(row[j - 1], tile, 4, p.blend[1]);
      resultRow.push(tile.sub([null, null, null, [0, p.keep[0]], [0, p.keep[1]]]));
    });
    resultRows.push(cat(resultRow, 4));
  });
  return cat(resultRows, 3).sub([null, null, null, [0, p.out[0]], [0, p.out[1]]]);
}

/** AutoencoderKLHunyuanVideo._decode (0.33.1) with the given tiling, on unscaled latents. */
export function referenceDecode(z: T.Tensor, t: TilingOptions, net: Net): Arr {
  const [, , F, h, w] = z.shape;
  const latMinH = Math.floor(t.tileSampleMinHeight / 8), latMinW = Math.floor(t.tileSampleMinWidth / 8), latMinT = Math.floor(t.tileSampleMinNumFrames / 4);
  const spatial = (zz: T.Tensor) =>
    tiled(zz, net, {
      min: [latMinH, latMinW],
      step: [Math.floor(t.tileSampleStrideHeight / 8), Math.floor(t.tileSampleStrideWidth / 8)],
      keep: [t.tileSampleStrideHeight, t.tileSampleStrideWidth],
      blend: [t.tileSampleMinHeight - t.tileSampleStrideHeight, t.tileSampleMinWidth - t.tileSampleStrideWidth],
      out: [zz.shape[3] * 8, zz.shape[4] * 8],
    });
  if (t.temporal && F > latMinT) {
    const stride = Math.floor(t.tileSampleStrideNumFrames / 4);
    const row: Arr[] = [];
    for (let i = 0; i < F; i += stride) {
      const tile = box(z, [null, null, [i, i + latMinT + 1], null, null]);
      let dec = t.spatial && (tile.shape[4] > latMinW || tile.shape[3] > latMinH) ? spatial(tile) : run(net, tile);
      tile.dispose();
      if (i > 0) dec = dec.sub([null, null, [1, dec.shape[2]], null, null]);
      row.push(dec);
    }
    const result = row.map((tile, i) =>
      i > 0
        ? blend(row[i - 1], tile, 2, t.tileSampleMinNumFrames - t.tileSampleStrideNumFrames).sub([null, null, [0, t.tileSampleStrideNumFrames], null, null])
        : tile.sub([null, null, [0, t.tileSampleStrideNumFrames + 1], null, null]),
    );
    return cat(result.filter((r) => r.shape[2] > 0), 2).sub([null, null, [0, (F - 1) * 4 + 1], null, null]);
  }
  if (t.spatial && (w > Math.floor(t.tileSampleStrideWidth / 8) || h > latMinH)) return spatial(z);
  return run(net, z);
}

/** AutoencoderKLHunyuanVideo._encode (0.33.1) with the given tiling -> moments. */
export function referenceEncode(x: T.Tensor, t: TilingOptions, net: Net): Arr {
  const [, , F, H, W] = x.shape;
  const ls = [Math.floor(t.tileSampleStrideHeight / 8), Math.floor(t.tileSampleStrideWidth / 8)] as [number, number];
  const spatial = (xx: T.Tensor) =>
    tiled(xx, net, {
      min: [t.tileSampleMinHeight, t.tileSampleMinWidth],
      step: [t.tileSampleStrideHeight, t.tileSampleStrideWidth],
      keep: ls,
      blend: [Math.floor(t.tileSampleMinHeight / 8) - ls[0], Math.floor(t.tileSampleMinWidth / 8) - ls[1]],
      out: [Math.floor(xx.shape[3] / 8), Math.floor(xx.shape[4] / 8)],
    });
  const spatialOn = t.spatial && (W > t.tileSampleMinWidth || H > t.tileSampleMinHeight);
  if (t.temporal && F > t.tileSampleMinNumFrames) {
    const lst = Math.floor(t.tileSampleStrideNumFrames / 4);
    const row: Arr[] = [];
    for (let i = 0; i < F; i += t.tileSampleStrideNumFrames) {
      const tile = box(x, [null, null, [i, i + t.tileSampleMinNumFrames + 1], null, null]);
      let enc = spatialOn ? spatial(tile) : run(net, tile);
      tile.dispose();
      if (i > 0) enc = enc.sub([null, null, [1, enc.shape[2]], null, null]);
      row.push(enc);
    }
    const result = row.map((tile, i) =>
      i > 0 ? blend(row[i - 1], tile, 2, Math.floor(t.tileSampleMinNumFrames / 4) - lst).sub([null, null, [0, lst], null, null]) : tile.sub([null, null, [0, lst + 1], null, null]),
    );
    return cat(result.filter((r) => r.shape[2] > 0), 2).sub([null, null, [0, Math.floor((F - 1) / 4) + 1], null, null]);
  }
  return spatialOn ? spatial(x) : run(net, x);
}
