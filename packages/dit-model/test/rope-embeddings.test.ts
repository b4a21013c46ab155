import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { applyRope, axisFrequencies, patchEmbed, ParamScope, poolRopeGrid, ropeCosSin, ropeGrid, timestepProjection } from '@framepack/dit-model';
import { rand } from './helpers.js';

const near = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  expect(m).toBeLessThanOrEqual(tol);
};

describe('3-D rope', () => {
  it('axis frequencies are 1/theta^(2k/d), each repeated twice', () => {
    const f = axisFrequencies(8, 256).toArray();
    near(f, [0, 0, 1, 1, 2, 2, 3, 3].map((k) => 1 / 256 ** ((2 * k) / 8)), 1e-7);
  });

  it('a grid holds [cosT, cosY, cosX, sinT, sinY, sinX] of position x frequency per token', () => {
    const spec = { axesDim: [2, 4, 4] as const, theta: 256 };
    const frames = [[3, 7], [0, 5]];
    const g = ropeGrid(spec, frames, 2, 3);
    expect(g.shape).toEqual([2, 2, 2, 3, 20]);
    const v = g.toArray();
    const freqs = (d: number) => Array.from({ length: d }, (_, i) => 1 / 256 ** ((2 * Math.floor(i / 2)) / d));
    const expected: number[] = [];
    for (const row of frames)
      for (const t of row)
        for (let y = 0; y < 2; y++)
          for (let x = 0; x < 3; x++) {
            const ang = [...freqs(2).map((f) => f * t), ...freqs(4).map((f) => f * y), ...freqs(4).map((f) => f * x)];
            expected.push(...ang.map(Math.cos), ...ang.map(Math.sin));
          }
    near(v, expected, 1e-6);
  });

  it('pooling replicate-pads at the end and averages cos/sin values per kernel block', () => {
    // (1, T=3, h=3, w=2, C=1) with kernel (2, 2, 2): padded to (4, 4, 2)
    const vals = Array.from({ length: 18 }, (_, i) => i * 0.5 - 2);
    const g = T.tensor(vals, [1, 3, 3, 2, 1]);
    const p = poolRopeGrid(g, [2, 2, 2]);
    expect(p.shape).toEqual([1, 2, 2, 1, 1]);
    const at = (t: number, y: number, x: number) => vals[(Math.min(t, 2) * 3 + Math.min(y, 2)) * 2 + Math.min(x, 1)];
    const expected: number[] = [];
    for (let bt = 0; bt < 2; bt++)
      for (let by = 0; by < 2; by++) {
        let s = 0;
        for (let t = 0; t < 2; t++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) s += at(2 * bt + t, 2 * by + y, x);
        expected.push(s / 8);
      }
    near(p.toArray(), expected, 1e-6);
  });

  it('rotates interleaved pairs: out[2i] = x[2i]c - x[2i+1]s, out[2i+1] = x[2i+1]c + x[2i]s', () => {
    const table = ropeGrid({ axesDim: [2, 2, 4], theta: 256 }, [[1, 4]], 1, 2); // 4 tokens, head dim 8
    const { cos, sin } = ropeCosSin(table);
    expect(cos.shape).toEqual([1, 4, 1, 8]);
    const x = rand([1, 4, 3, 8], 5);
    const out = applyRope(x, cos, sin).toArray();
    const xv = x.toArray(), c = cos.toArray(), s = sin.toArray();
    const expected = xv.map((_, i) => {
      const tok = Math.floor(i / 24), d = i % 8;
      const ci = c[tok * 8 + d], si = s[tok * 8 + d];
      return d % 2 === 0 ? xv[i] * ci - xv[i + 1] * si : xv[i] * ci + xv[i - 1] * si;
    });
    near(out, expected, 1e-6);
    // bf16 input: computed in f32 and rounded once
    const xb = T.cast(x, 'bf16');
    const ob = applyRope(xb, cos, sin);
    expect(ob.dtype).toBe('bf16');
    near(ob.toArray(), T.cast(T.cast(applyRope(T.cast(xb, 'f32'), cos, sin), 'bf16'), 'f32').toArray(), 0);
  });
});

describe('embeddings', () => {
  it('timestep features are [cos(t f_j), sin(t f_j)], f_j = 10000^(-j/128)', () => {
    const t = T.tensor([0, 0.5, 3], [3]);
    const e = timestepProjection(t);
    expect(e.shape).toEqual([3, 256]);
    const expected: number[] = [];
    for (const tv of [0, 0.5, 3]) {
      const a = Array.from({ length: 128 }, (_, j) => tv * Math.exp((-Math.log(10000) * j) / 128));
      expected.push(...a.map(Math.cos), ...a.map(Math.sin));
    }
    near(e.toArray(), expected, 2e-6);
  });

  it('patch embedding equals a kernel = stride conv3d, with replicate end padding', () => {
    const w = rand([5, 3, 2, 4, 4], 11, 0.3);
    const b = rand([5], 12);
    const p = new ParamScope(new Map([['e.weight', w], ['e.bias', b]])).at('e');
    const x = rand([2, 3, 3, 6, 5], 13);
    const tokens = patchEmbed(p, x, [2, 4, 4], true);
    // independent: pad by repeating the last frame/row/column, conv3d, flatten (t, h, w)
    const xp = T.pad(x, [[0, 1], [0, 2], [0, 3]], 'replicate');
    const conv = T.conv3d(xp, w, b, { stride: [2, 4, 4] });
    expect(conv.shape).toEqual([2, 5, 2, 2, 2]);
    const ref = T.transpose(T.reshape(conv, [2, 5, 8]), 1, 2);
    expect(tokens.shape).toEqual([2, 8, 5]);
    near(tokens.toArray(), ref.toArray(), 1e-5);
  });
});
