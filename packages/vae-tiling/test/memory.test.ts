/**
 * Peak memory of a tiled decode scales with the tile, not the video. "Working memory" below is the peak of
 * live tensor bytes during the call minus what was live before and minus the returned video itself (which
 * must exist whatever the method). Untiled decoding is measured the same way to show the metric does grow
 * with the video when nothing is tiled. Tensor leaks inside the tile loop would also make it grow.
 */
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import type { TilingOptions } from '@framepack/vae-tiling';
import { randTensor, tinyVae } from './helpers.js';

function workingBytes(fn: () => T.Tensor): number {
  const before = T.memoryStats('cpu').currentBytes;
  T.resetPeakMemory('cpu');
  const out = fn();
  const peak = T.memoryStats('cpu').peakBytes;
  const outBytes = out.numel * 4;
  out.dispose();
  expect(T.memoryStats('cpu').currentBytes).toBe(before); // nothing leaked
  return peak - before - outBytes;
}

describe('tiled decode memory', () => {
  const vae = tinyVae({}, 3);
  const measure = (shape: number[], tiling: Partial<TilingOptions> | false) => {
    const z = randTensor(shape, 5);
    const w = workingBytes(() => vae.decode(z, { tiling }));
    z.dispose();
    return w;
  };

  it('stays flat when the video gets longer (temporal tiles), while an untiled decode grows', () => {
    const tiling = { spatial: false, tileSampleMinNumFrames: 8, tileSampleStrideNumFrames: 4 };
    const short = measure([1, 4, 5, 4, 4], tiling), long = measure([1, 4, 17, 4, 4], tiling);
    expect(long / short).toBeLessThan(1.1);
    const shortU = measure([1, 4, 5, 4, 4], false), longU = measure([1, 4, 17, 4, 4], false);
    expect(longU / shortU).toBeGreaterThan(2.5);
    expect(long).toBeLessThan(longU / 2);
  });

  it('stays flat when the frame gets larger (spatial tiles), while an untiled decode grows', () => {
    const tiling = { temporal: false, tileSampleMinHeight: 32, tileSampleMinWidth: 32, tileSampleStrideHeight: 24, tileSampleStrideWidth: 24 };
    const small = measure([1, 4, 3, 4, 4], tiling), large = measure([1, 4, 3, 12, 12], tiling);
    expect(large / small).toBeLessThan(1.3);
    const smallU = measure([1, 4, 3, 4, 4], false), largeU = measure([1, 4, 3, 12, 12], false);
    expect(largeU / smallU).toBeGreaterThan(5);
    expect(large).toBeLessThan(largeU / 4);
  });

  it('stays within a small factor when both grow (spatial tiles inside temporal tiles)', () => {
    const tiling = { tileSampleMinHeight: 32, tileSampleMinWidth: 32, tileSampleStrideHeight: 24, tileSampleStrideWidth: 24, tileSampleMinNumFrames: 8, tileSampleStrideNumFrames: 4 };
    const small = measure([1, 4, 5, 4, 4], tiling), large = measure([1, 4, 9, 8, 8], tiling);
    // the only video-sized buffer is the previous temporal tile's last `blend` frames of RGB (3 channels)
    expect(large / small).toBeLessThan(1.4);
  });
});
