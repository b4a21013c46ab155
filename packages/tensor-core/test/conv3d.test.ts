import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { close, rand } from './helpers.js';

/** The textbook seven-loop convolution with bounds checks (zero padding), in f64. */
function naive(x: T.Tensor, w: T.Tensor, b: T.Tensor | null, stride: number[], padding: number[]): { shape: number[]; values: number[] } {
  const [N, Ci, Ti, Hi, Wi] = x.shape;
  const [Co, , KT, KH, KW] = w.shape;
  const out = [0, 1, 2].map((i) => Math.floor((x.shape[2 + i] + 2 * padding[i] - w.shape[2 + i]) / stride[i]) + 1);
  const vx = x.toArray(), vw = w.toArray(), vb = b?.toArray();
  const values: number[] = [];
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let ot = 0; ot < out[0]; ot++)
        for (let oh = 0; oh < out[1]; oh++)
          for (let ow = 0; ow < out[2]; ow++) {
            let s = vb ? vb[co] : 0;
            for (let ci = 0; ci < Ci; ci++)
              for (let kt = 0; kt < KT; kt++)
                for (let kh = 0; kh < KH; kh++)
                  for (let kw = 0; kw < KW; kw++) {
                    const it = ot * stride[0] + kt - padding[0], ih = oh * stride[1] + kh - padding[1], iw = ow * stride[2] + kw - padding[2];
                    if (it < 0 || it >= Ti || ih < 0 || ih >= Hi || iw < 0 || iw >= Wi) continue;
                    s += vw[(((co * Ci + ci) * KT + kt) * KH + kh) * KW + kw] * vx[(((n * Ci + ci) * Ti + it) * Hi + ih) * Wi + iw];
                  }
            values.push(s);
          }
  return { shape: [N, Co, ...out], values };
}

describe('conv3d (CPU fast path) against a naive convolution', () => {
  const cases: { x: number[]; w: number[]; stride: number[]; padding: number[]; bias: boolean }[] = [
    { x: [1, 3, 4, 7, 9], w: [5, 3, 3, 3, 3], stride: [1, 1, 1], padding: [0, 0, 0], bias: true }, // Co not a multiple of 4
    { x: [2, 2, 5, 6, 8], w: [8, 2, 3, 3, 3], stride: [2, 2, 2], padding: [0, 0, 0], bias: true }, // strided (VAE downsampler)
    { x: [1, 4, 3, 5, 5], w: [3, 4, 3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1], bias: false }, // zero padding
    { x: [1, 2, 4, 5, 6], w: [3, 2, 3, 3, 2], stride: [1, 2, 2], padding: [1, 1, 0], bias: true }, // kernel width 2
    { x: [1, 6, 2, 4, 4], w: [7, 6, 1, 1, 1], stride: [1, 1, 1], padding: [0, 0, 0], bias: true }, // pointwise
    { x: [2, 3, 4, 8, 8], w: [4, 3, 2, 4, 4], stride: [2, 4, 4], padding: [0, 0, 0], bias: true }, // kernel = stride (patch embed)
    { x: [1, 1, 3, 4, 10], w: [2, 1, 2, 2, 3], stride: [1, 1, 3], padding: [0, 1, 2], bias: true }, // width stride with KW 3
  ];
  for (const [i, c] of cases.entries()) {
    it(`x [${c.x}] w [${c.w}] stride [${c.stride}] padding [${c.padding}]`, () => {
      const x = rand(c.x, 100 + i), w = rand(c.w, 200 + i), b = c.bias ? rand([c.w[0]], 300 + i) : null;
      const y = T.conv3d(x, w, b, { stride: c.stride, padding: c.padding });
      const ref = naive(x, w, b, c.stride, c.padding);
      expect(y.shape).toEqual(ref.shape);
      close(y.toArray(), ref.values, 1e-5);
    });
  }
});
