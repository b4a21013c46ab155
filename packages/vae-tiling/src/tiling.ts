/**
 * Tiled encode/decode with the exact blending of diffusers 0.33.1's AutoencoderKLHunyuanVideo
 * (`enable_tiling`, `tiled_encode`/`tiled_decode`, `_temporal_tiled_encode`/`_temporal_tiled_decode`),
 * reorganised so that memory scales with one tile instead of the whole video:
 *
 * - The reference decodes every tile, then blends each one in place with its (already blended) upper and left
 *   neighbours (`blend_v`, `blend_h`), keeps its top-left `stride` part and concatenates. Here the tiles are
 *   visited in the same order, and of each finished tile we keep only what a later tile reads: its bottom
 *   `blend` rows (for the tile below) and its right `blend` columns (for the tile to its right). The kept part
 *   goes straight into the preallocated output with `T.writeRegion`.
 * - Temporal tiles are blended with `blend_t`, a per-pixel operation along time. It therefore commutes with
 *   the spatial assembly: each spatial region of a temporal tile is blended with the same region of the
 *   previous temporal tile's last frames (kept as a small `blend`-frame buffer) and written out directly,
 *   so a whole temporal tile is never assembled.
 */
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { VaeTilingError } from './errors.js';

/** The six `enable_tiling` parameters (sample = pixel units), plus which kinds of tiling are on. */
export interface TilingOptions {
  /** Spatial tiling (`use_tiling`): tiles of tileSampleMin{Height,Width} px every tileSampleStride{Height,Width} px. */
  spatial: boolean;
  /** Temporal tiling (`use_framewise_encoding` / `use_framewise_decoding`; always on in the reference). */
  temporal: boolean;
  tileSampleMinHeight: number;
  tileSampleMinWidth: number;
  tileSampleMinNumFrames: number;
  tileSampleStrideHeight: number;
  tileSampleStrideWidth: number;
  tileSampleStrideNumFrames: number;
}

/** The reference's state after construction: framewise (temporal) tiling on, spatial tiling off. */
export const DEFAULT_TILING: Readonly<TilingOptions> = Object.freeze({
  spatial: false,
  temporal: true,
  tileSampleMinHeight: 256,
  tileSampleMinWidth: 256,
  tileSampleMinNumFrames: 16,
  tileSampleStrideHeight: 192,
  tileSampleStrideWidth: 192,
  tileSampleStrideNumFrames: 12,
});

/** Tiling with everything off: one pass over the whole input (not what the reference does by default). */
export const NO_TILING: Readonly<TilingOptions> = Object.freeze({ ...DEFAULT_TILING, spatial: false, temporal: false });

const SIZE_KEYS = ['tileSampleMinHeight', 'tileSampleMinWidth', 'tileSampleMinNumFrames', 'tileSampleStrideHeight', 'tileSampleStrideWidth', 'tileSampleStrideNumFrames'] as const;

/**
 * Resolve a per-call tiling argument:
 * - `undefined`: `base` (the VAE's current setting; by default the reference's framewise-only tiling);
 * - `false`: no tiling at all;
 * - an object: like `enable_tiling(**opts)`: spatial tiling on, temporal on, given sizes over the defaults.
 */
export function resolveTiling(opt: Partial<TilingOptions> | false | undefined, base: Readonly<TilingOptions> = DEFAULT_TILING): TilingOptions {
  if (opt === undefined) return { ...base };
  if (opt === false) return { ...NO_TILING };
  if (opt === null || typeof opt !== 'object') throw new VaeTilingError(`tiling must be false or an object of TilingOptions, got ${String(opt)}`);
  for (const k of Object.keys(opt)) {
    if (k !== 'spatial' && k !== 'temporal' && !(SIZE_KEYS as readonly string[]).includes(k))
      throw new VaeTilingError(`unknown tiling option '${k}' (known: spatial, temporal, ${SIZE_KEYS.join(', ')})`);
  }
  const out: TilingOptions = { ...DEFAULT_TILING, spatial: true, temporal: true };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Check tile sizes against the compression ratios. Sizes must be multiples of the ratio (so tiles line up
 * with latent pixels) and a stride may not exceed its tile (the reference would leave gaps in the output).
 */
export function validateTiling(t: TilingOptions, spatialRatio: number, temporalRatio: number): TilingOptions {
  if (typeof t.spatial !== 'boolean' || typeof t.temporal !== 'boolean') throw new VaeTilingError('tiling.spatial and tiling.temporal must be booleans');
  for (const k of SIZE_KEYS) {
    const v = t[k];
    const ratio = k.endsWith('NumFrames') ? temporalRatio : spatialRatio;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new VaeTilingError(`tiling.${k} must be a positive integer, got ${JSON.stringify(v)}`);
    if (v % ratio) throw new VaeTilingError(`tiling.${k} = ${v} must be a multiple of the ${ratio === temporalRatio && k.endsWith('NumFrames') ? 'temporal' : 'spatial'} compression ratio ${ratio}`);
  }
  const pairs = [
    ['tileSampleStrideHeight', 'tileSampleMinHeight'],
    ['tileSampleStrideWidth', 'tileSampleMinWidth'],
    ['tileSampleStrideNumFrames', 'tileSampleMinNumFrames'],
  ] as const;
  for (const [s, m] of pairs) if (t[s] > t[m]) throw new VaeTilingError(`tiling.${s} = ${t[s]} is larger than tiling.${m} = ${t[m]}: tiles would leave gaps`);
  return t;
}

// ------------------------------------------------------------------------------------------------ blending

/** A (1,..,e,..,1) tensor along `axis` of a rank-`ndim` tensor holding `value(i)` for i < e. */
function ramp(e: number, axis: number, ndim: number, value: (i: number) => number, like: Tensor): Tensor {
  const shape = new Array(ndim).fill(1);
  shape[axis] = e;
  return T.tensor(Array.from({ length: e }, (_, i) => value(i)), shape, { dtype: like.dtype, device: like.device });
}

/**
 * blend_v / blend_h / blend_t: `b[i] = a[-e + i] * (1 - i/e) + b[i] * (i/e)` for i < e along `axis`, with
 * `e = min(a.len, b.len, extent)`, written into b in place. `a` is given by its last frames/rows/columns only
 * (at least e of them).
 */
export function blendInto(aTail: Tensor, b: Tensor, axis: number, extent: number, aLength = aTail.shape[axis]): void {
  const e = Math.min(aLength, b.shape[axis], extent);
  if (e <= 0) return;
  if (aTail.shape[axis] < e) throw new Error(`internal: blend needs ${e} trailing entries, only ${aTail.shape[axis]} kept`);
  T.tidy(() => {
    const a = T.slice(aTail, axis, aTail.shape[axis] - e);
    const head = T.slice(b, axis, 0, e);
    const wa = ramp(e, axis, b.ndim, (i) => 1 - i / e, b);
    const wb = ramp(e, axis, b.ndim, (i) => i / e, b);
    const mixed = T.add(T.mul(a, wa), T.mul(head, wb));
    T.writeRegion(b, mixed, new Array(b.ndim).fill(0));
  });
}

/** x[..., y0:y0+h, x0:x0+w] (clipped) of a (B, C, F, H, W) tensor, as a new tensor. */
export function cropHW(x: Tensor, y0: number, h: number, x0: number, w: number): Tensor {
  const [, , , H, W] = x.shape;
  if (y0 === 0 && x0 === 0 && h >= H && w >= W) return T.slice(x, 0, 0); // a view of everything
  return T.tidy(() => T.slice(T.slice(x, 3, y0, y0 + h), 4, x0, x0 + w));
}

/** The last n entries along an axis, as an independent copy (a slice may be a view; x is modified later). */
const tail = (x: Tensor, axis: number, n: number): Tensor => T.tidy(() => T.clone(T.slice(x, axis, Math.max(0, x.shape[axis] - n))));

// ------------------------------------------------------------------------------------------------ spatial

/** Receives each finished piece of output: `region` (B, C, F, h, w) goes at rows y0.., columns x0.. . */
export type RegionSink = (region: Tensor, y0: number, x0: number) => void;

/** One spatial tiling pass in the units of its input (start, tile) and of its output (keep, blend, out). */
export interface SpatialPlan {
  /** Tile size [h, w] in input units. */
  tile: [number, number];
  /** Distance between tile starts [h, w] in input units. */
  step: [number, number];
  /** How much of each (blended) tile's top-left is kept, output units. */
  keep: [number, number];
  /** Blend extents [h, w], output units. */
  blend: [number, number];
  /** Output crop [H, W]. */
  out: [number, number];
}

/**
 * tiled_encode / tiled_decode: run `f` on every tile of x (B, C, F, h, w) in row-major order, blend it with the
 * tile above and the tile to the left (both already blended), and hand its kept part to `sink`.
 * Holds at most one tile result, one row of `blend`-high bottom strips and one `blend`-wide right strip.
 */
export function spatialTiles(x: Tensor, plan: SpatialPlan, f: (tile: Tensor) => Tensor, sink: RegionSink): void {
  const [h, w] = [x.shape[3], x.shape[4]];
  const [th, tw] = plan.tile, [sh, sw] = plan.step, [kh, kw] = plan.keep, [bh, bw] = plan.blend, [H, W] = plan.out;
  if (sh <= 0 || sw <= 0) throw new VaeTilingError(`spatial tile stride must be positive, got [${plan.step}]`);
  const above: ({ strip: Tensor; len: number } | null)[] = [];
  let y0 = 0;
  try {
    for (let i = 0; i < h; i += sh) {
      let x0 = 0, rowKeep = 0;
      let left: { strip: Tensor; len: number } | null = null;
      try {
        for (let j = 0, c = 0; j < w; j += sw, c++) {
          const tile = cropHW(x, i, th, j, tw);
          const r = f(tile);
          tile.dispose();
          try {
            const up = above[c];
            if (up) blendInto(up.strip, r, 3, bh, up.len);
            if (left) blendInto(left.strip, r, 4, bw, left.len);
            const [rh, rw] = [r.shape[3], r.shape[4]];
            if (up) up.strip.dispose();
            above[c] = bh > 0 ? { strip: tail(r, 3, bh), len: rh } : null;
            left?.strip.dispose();
            left = bw > 0 ? { strip: tail(r, 4, bw), len: rw } : null;
            const keepH = Math.min(kh, rh), keepW = Math.min(kw, rw);
            const outH = Math.min(keepH, H - y0), outW = Math.min(keepW, W - x0);
            if (outH > 0 && outW > 0) {
              const region = cropHW(r, 0, outH, 0, outW);
              try {
                sink(region, y0, x0);
              } finally {
                region.dispose();
              }
            }
            x0 += keepW;
            rowKeep = keepH;
          } finally {
            r.dispose();
          }
        }
      } finally {
        left?.strip.dispose();
      }
      y0 += rowKeep;
    }
  } finally {
    for (const a of above) a?.strip.dispose();
  }
}

// ------------------------------------------------------------------------------------------------ temporal

/** The temporal tiling of one call (frame counts in input/output units). */
export interface TemporalPlan {
  /** Tile length in input frames and distance between tile starts. */
  tile: number;
  step: number;
  /** Frames kept of the first tile / of every later tile (after its first frame is dropped). */
  keepFirst: number;
  keep: number;
  /** blend_t extent, output frames. */
  blend: number;
  /** Output frame count (crop). */
  out: number;
}

/**
 * Run `process(tile, sink)` for each temporal tile of x (B, C, F, h, w) and assemble the result into `out`
 * (B, C', out.frames, H, W) at frame `frameOffset`. `process` decodes/encodes the tile, spatially tiled or not,
 * and passes each finished spatial region to the sink. `frames(n)` is the output length of an n-frame input.
 * With `plan === null` the whole input is one tile (no drop, no blend).
 */
export function temporalTiles(
  x: Tensor,
  plan: TemporalPlan | null,
  frames: (n: number) => number,
  process: (tile: Tensor, sink: RegionSink) => void,
  out: Tensor,
  frameOffset = 0,
): void {
  const F = x.shape[2];
  if (!plan) {
    process(x, (region, y0, x0) => T.writeRegion(out, region, [0, 0, frameOffset, y0, x0]));
    return;
  }
  if (plan.step <= 0) throw new VaeTilingError(`temporal tile stride must be positive, got ${plan.step}`);
  // Tile k covers input [start, start + tile); its output loses its first frame when k > 0.
  const starts: number[] = [];
  for (let s = 0; s < F; s += plan.step) starts.push(s);
  const lens = starts.map((s, k) => frames(Math.min(plan.tile, F - s)) - (k > 0 ? 1 : 0));
  // blend_t extent between tile k-1 and k: min(a.len, b.len, blend) (a is tile k-1 after its own blends).
  const ext = lens.map((L, k) => (k > 0 ? Math.max(0, Math.min(lens[k - 1], L, plan.blend)) : 0));
  let offset = 0;
  // The previous tile's last frames, per spatial region (regions repeat from tile to tile): each is freed as
  // soon as the same region of the next tile has used it, so at most about one frame-set of them is alive.
  let prevTails = new Map<string, Tensor>();
  const key = (y0: number, x0: number) => `${y0},${x0}`;
  try {
    for (let k = 0; k < starts.length; k++) {
      const L = lens[k];
      if (L <= 0) continue; // a one-frame tail tile loses its only frame: it contributes nothing
      const keep = Math.min(k === 0 ? plan.keepFirst : plan.keep, L, plan.out - offset);
      const eIn = ext[k], eOut = k + 1 < starts.length ? ext[k + 1] : 0;
      const nextTails = new Map<string, Tensor>();
      const tile = T.slice(x, 2, starts[k], starts[k] + plan.tile);
      const o = offset;
      try {
        process(tile, (region, y0, x0) => {
          T.tidy(() => {
            const r = k > 0 ? T.slice(region, 2, 1) : region;
            if (eIn > 0) {
              const prev = prevTails.get(key(y0, x0));
              if (!prev || prev.shape[3] !== r.shape[3] || prev.shape[4] !== r.shape[4]) throw new Error(`internal: no matching tail for region ${key(y0, x0)}`);
              blendInto(prev, r, 2, eIn, eIn);
              prev.dispose();
              prevTails.delete(key(y0, x0));
            }
            if (eOut > 0) nextTails.set(key(y0, x0), T.keep(T.clone(T.slice(r, 2, L - eOut, L))));
            if (keep > 0) T.writeRegion(out, T.slice(r, 2, 0, keep), [0, 0, frameOffset + o, y0, x0]);
          });
        });
      } catch (e) {
        for (const t of nextTails.values()) t.dispose();
        throw e;
      } finally {
        tile.dispose();
      }
      for (const t of prevTails.values()) t.dispose();
      prevTails = nextTails;
      offset += Math.max(0, keep);
    }
  } finally {
    for (const t of prevTails.values()) t.dispose();
  }
  if (offset !== plan.out) throw new Error(`internal: temporal tiles filled ${offset} of ${plan.out} frames`);
}
