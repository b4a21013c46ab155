import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import {
  blendInto,
  decodeLatents,
  DEFAULT_TILING,
  encodeMoments,
  HunyuanVideoVae,
  resolveTiling,
  type TilingOptions,
  validateTiling,
  VaeTilingError,
  vaeLayout,
} from '@framepack/vae-tiling';
import { randomWeights, randTensor, relL2, tinyConfig } from './helpers.js';
import { referenceDecode, referenceEncode } from './reference-tiling.js';

describe('blendInto (blend_v / blend_h / blend_t)', () => {
  it('mixes the last e entries of a into the first e of b with weights i/e', () => {
    const a = T.tensor([10, 20, 30, 40], [1, 1, 4, 1, 1]);
    const b = T.tensor([1, 2, 3, 4, 5], [1, 1, 5, 1, 1]);
    blendInto(a, b, 2, 3); // e = 3: b[i] = a[1 + i] (1 - i/3) + b[i] i/3
    const v = b.toArray();
    expect(v[0]).toBeCloseTo(20, 5);
    expect(v[1]).toBeCloseTo(30 * (2 / 3) + 2 / 3, 5);
    expect(v[2]).toBeCloseTo(40 / 3 + 3 * (2 / 3), 5);
    expect(v.slice(3)).toEqual([4, 5]);
  });
  it('clips the extent to both lengths and is a no-op for extent 0', () => {
    const a = T.tensor([7, 9], [1, 1, 1, 1, 2]);
    const b = T.tensor([1, 1, 1], [1, 1, 1, 1, 3]);
    blendInto(a, b, 4, 8); // e = 2
    expect(b.toArray()).toEqual([7, 5, 1]);
    blendInto(a, b, 4, 0);
    expect(b.toArray()).toEqual([7, 5, 1]);
  });
});

describe('tiling options', () => {
  it('resolves like the reference: undefined = framewise only, object = enable_tiling, false = off', () => {
    expect(resolveTiling(undefined)).toEqual({ ...DEFAULT_TILING });
    expect(resolveTiling(undefined).spatial).toBe(false);
    expect(resolveTiling(undefined).temporal).toBe(true);
    const on = resolveTiling({ tileSampleMinHeight: 64 });
    expect(on).toMatchObject({ spatial: true, temporal: true, tileSampleMinHeight: 64, tileSampleMinWidth: 256, tileSampleStrideNumFrames: 12 });
    expect(resolveTiling(false)).toMatchObject({ spatial: false, temporal: false });
  });
  it('rejects unknown keys, non-multiples of the ratios and strides beyond the tile', () => {
    expect(() => resolveTiling({ tileHeight: 3 } as unknown as Partial<TilingOptions>)).toThrow(VaeTilingError);
    expect(() => validateTiling(resolveTiling({ tileSampleMinHeight: 60 }), 8, 4)).toThrow(/multiple of the spatial/);
    expect(() => validateTiling(resolveTiling({ tileSampleStrideNumFrames: 6 }), 8, 4)).toThrow(/multiple of the temporal/);
    expect(() => validateTiling(resolveTiling({ tileSampleMinWidth: 64, tileSampleStrideWidth: 72 }), 8, 4)).toThrow(/gaps/);
    expect(() => validateTiling(resolveTiling({ tileSampleStrideHeight: 0 }), 8, 4)).toThrow(/positive integer/);
  });
});

describe('streaming tiled decode/encode equals a literal model of the reference tiling', () => {
  const config = tinyConfig();
  const weights = randomWeights(config, 11);
  const layout = vaeLayout(config);
  const vae = HunyuanVideoVae.fromWeights(config, new Map(weights));
  const decodeNet = (z: T.Tensor) => decodeLatents(z, weights, config, layout);
  const encodeNet = (x: T.Tensor) => encodeMoments(x, weights, config, layout);

  const decodeCases: { name: string; shape: number[]; tiling: Partial<TilingOptions> | undefined }[] = [
    { name: 'spatial + temporal, uneven grid, batch 2', shape: [2, 4, 4, 5, 6], tiling: { tileSampleMinHeight: 32, tileSampleMinWidth: 24, tileSampleStrideHeight: 24, tileSampleStrideWidth: 16, tileSampleMinNumFrames: 8, tileSampleStrideNumFrames: 4 } },
    { name: 'spatial only (temporal off)', shape: [1, 4, 3, 6, 5], tiling: { temporal: false, tileSampleMinHeight: 24, tileSampleMinWidth: 24, tileSampleStrideHeight: 16, tileSampleStrideWidth: 16 } },
    { name: 'temporal stride = tile (no blend)', shape: [1, 4, 7, 3, 3], tiling: { spatial: false, tileSampleMinNumFrames: 8, tileSampleStrideNumFrames: 8 } },
    { name: 'default (framewise 16/12)', shape: [1, 4, 9, 2, 3], tiling: undefined },
    { name: '0.33.1 width quirk (stride width decides)', shape: [1, 4, 2, 3, 3], tiling: { tileSampleMinHeight: 32, tileSampleMinWidth: 32, tileSampleStrideHeight: 16, tileSampleStrideWidth: 16 } },
  ];
  for (const c of decodeCases) {
    it(`decode: ${c.name}`, () => {
      const latents = randTensor(c.shape, c.shape.reduce((a, b) => a * 3 + b, 0));
      const ours = vae.decode(latents, { tiling: c.tiling });
      const z = T.div(latents, config.scalingFactor);
      const ref = referenceDecode(z, resolveTiling(c.tiling), decodeNet);
      expect(ours.shape).toEqual(ref.shape);
      expect(relL2(ours.toFloat32Array(), ref.data)).toBeLessThan(1e-6);
      // and the tiling did change the result (otherwise the comparison proves nothing about blending)
      const plain = vae.decode(latents, { tiling: false });
      expect(relL2(plain.toFloat32Array(), ref.data)).toBeGreaterThan(1e-4);
      plain.dispose();
      for (const t of [ours, z, latents]) t.dispose();
    });
  }

  const encodeCases: { name: string; shape: number[]; tiling: Partial<TilingOptions> | undefined }[] = [
    { name: 'spatial + temporal', shape: [1, 3, 13, 32, 40], tiling: { tileSampleMinHeight: 24, tileSampleMinWidth: 32, tileSampleStrideHeight: 16, tileSampleStrideWidth: 16, tileSampleMinNumFrames: 8, tileSampleStrideNumFrames: 4 } },
    { name: 'spatial only, batch 2', shape: [2, 3, 5, 32, 24], tiling: { temporal: false, tileSampleMinHeight: 16, tileSampleMinWidth: 16, tileSampleStrideHeight: 8, tileSampleStrideWidth: 8 } },
    { name: 'temporal only, frames not 4k+1', shape: [1, 3, 11, 16, 16], tiling: { spatial: false, tileSampleMinNumFrames: 4, tileSampleStrideNumFrames: 4 } },
  ];
  for (const c of encodeCases) {
    it(`encode: ${c.name}`, () => {
      const pixels = randTensor(c.shape, c.shape.reduce((a, b) => a * 5 + b, 1));
      const ours = vae.encode(pixels, { tiling: c.tiling });
      const ref = referenceEncode(pixels, resolveTiling(c.tiling), encodeNet);
      const C = config.latentChannels;
      const refMean = T.slice(T.tensor(ref.data, ref.shape), 1, 0, C);
      expect(ours.mean.shape).toEqual(refMean.shape);
      expect(relL2(ours.mean.toFloat32Array(), refMean.toFloat32Array())).toBeLessThan(1e-6);
      const plain = vae.encode(pixels, { tiling: false });
      expect(relL2(plain.mean.toFloat32Array(), refMean.toFloat32Array())).toBeGreaterThan(1e-4);
      for (const t of [ours.mean, ours.logvar, ours.latents, plain.mean, plain.logvar, plain.latents, pixels, refMean]) t.dispose();
    });
  }
});
