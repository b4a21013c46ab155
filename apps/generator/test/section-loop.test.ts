import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import { expectedPixelFrames, GenerationCancelledError, latentPaddings, roundHalfEven, runSectionLoop, type SectionInputs, softAppend, totalSections } from '../src/section-loop.js';

/** A decode that keeps the latent's value per frame: latent 0 -> 1 frame, latent k>0 -> 4 frames (causal VAE layout). */
async function fakeDecode(latents: T.Tensor): Promise<T.Tensor> {
  const t = latents.shape[2];
  const v = T.slice(T.reshape(latents, [1, latents.shape[1], t, -1]), 1, 0, 1).toArray(); // channel 0, all positions
  const per = v.length / t;
  const frames: number[] = [];
  for (let k = 0; k < t; k++) for (let r = 0; r < (k === 0 ? 1 : 4); r++) frames.push(v[k * per]);
  const n = frames.length;
  return T.tensor(Array.from({ length: 3 * n }, (_, i) => frames[i % n]), [1, 3, n, 1, 1]);
}

describe('section schedule', () => {
  it('matches the reference formulas', () => {
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(totalSections(5, 9)).toBe(4); // 150 / 36 = 4.17
    expect(totalSections(0.1, 9)).toBe(1);
    expect(totalSections(1.2, 3)).toBe(3);
    expect(totalSections(2.4, 3)).toBe(6);
    expect(latentPaddings(4)).toEqual([3, 2, 1, 0]);
    expect(latentPaddings(6)).toEqual([3, 2, 2, 2, 1, 0]);
    expect(expectedPixelFrames('original', 4, 9)).toBe(145);
  });
  it('lays out indices as the worked example (S=4, W=9, original)', async () => {
    const seen: Record<string, number[]>[] = [];
    const start = T.full([1, 2, 1, 1, 1], 100);
    const { latents, pixels } = await runSectionLoop(
      { mode: 'original', startLatent: start, windowSize: 9, sections: 4 },
      {
        async sample(s: SectionInputs) {
          seen.push({ latent: s.latentIndices.toArray(), clean: s.cleanLatentIndices.toArray(), x2: s.cleanLatentIndices2x.toArray(), x4: s.cleanLatentIndices4x.toArray(), ctx1: s.cleanLatents.toArray() });
          return T.full([1, 2, 9, 1, 1], s.index + 1);
        },
        decode: fakeDecode,
      },
    );
    expect(seen[0].latent).toEqual([28, 29, 30, 31, 32, 33, 34, 35, 36]);
    expect(seen[0].clean).toEqual([0, 37]);
    expect(seen[0].x2).toEqual([38, 39]);
    expect(seen[0].x4[0]).toBe(40);
    expect(seen[1].ctx1).toEqual([100, 1, 100, 1]); // [start, g1[0]] per channel
    expect(seen[3].latent).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen[3].clean).toEqual([0, 10]);
    expect(latents.shape[2]).toBe(37);
    expect(pixels.shape[2]).toBe(145);
    const px = pixels.toArray().slice(0, 145);
    expect(px[0]).toBe(100); // the start frame opens the video
    expect(px[144]).toBe(1); // the first generated section closes it
  });
  it('F1 appends forwards with fixed indices', async () => {
    const seen: number[][] = [];
    const { latents, pixels } = await runSectionLoop(
      { mode: 'f1', startLatent: T.full([1, 2, 1, 1, 1], 100), windowSize: 9, sections: 3 },
      {
        async sample(s) {
          seen.push([...s.latentIndices.toArray(), ...s.cleanLatentIndices.toArray()]);
          return T.full([1, 2, 9, 1, 1], s.index + 1);
        },
        decode: fakeDecode,
      },
    );
    expect(seen[0]).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 0, 19]);
    expect(seen[2]).toEqual(seen[0]);
    expect(latents.shape[2]).toBe(28);
    expect(pixels.shape[2]).toBe(expectedPixelFrames('f1', 3, 9));
    expect(pixels.toArray()[0]).toBe(100);
  });
  it('places the end latent as the first section post context, scaled by strength', async () => {
    let post: number[] = [];
    await runSectionLoop(
      { mode: 'original', startLatent: T.zeros([1, 1, 1, 1, 1]), windowSize: 2, sections: 2, endLatent: T.full([1, 1, 1, 1, 1], 8), endStrength: 0.5 },
      {
        async sample(s) {
          if (s.index === 0) post = s.cleanLatents.toArray();
          return T.ones([1, 1, 2, 1, 1]);
        },
        decode: fakeDecode,
      },
    );
    expect(post).toEqual([0, 4]);
  });
  it('stops between sections when cancelled and never decodes the cancelled section', async () => {
    const ac = new AbortController();
    const decoded: number[] = [];
    await expect(
      runSectionLoop(
        { mode: 'f1', startLatent: T.zeros([1, 1, 1, 1, 1]), windowSize: 2, sections: 3 },
        {
          signal: ac.signal,
          async sample(s) {
            if (s.index === 1) ac.abort();
            return T.ones([1, 1, 2, 1, 1]);
          },
          async decode(l) {
            decoded.push(l.shape[2]);
            return fakeDecode(l);
          },
        },
      ),
    ).rejects.toBeInstanceOf(GenerationCancelledError);
    expect(decoded).toEqual([3]);
  });
  it('soft append blends linearly over the overlap', () => {
    const a = T.full([1, 1, 3, 1, 1], 1), b = T.zeros([1, 1, 4, 1, 1]);
    expect(softAppend(a, b, 3).toArray()).toEqual([1, 0.5, 0, 0]);
  });
});
