import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { rand } from './helpers.js';

/** Element-by-element padding: clamp the index (replicate) or use the fill value (constant). */
function naivePad(x: T.Tensor, pads: [number, number][], mode: 'constant' | 'replicate', value: number): number[] {
  const v = x.toArray();
  const shape = x.shape;
  const out = shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const n = out.reduce((a, b) => a * b, 1);
  const res: number[] = [];
  for (let i = 0; i < n; i++) {
    let rem = i, off = 0, stride = 1, inside = true;
    for (let d = out.length - 1; d >= 0; d--) {
      let c = (rem % out[d]) - pads[d][0];
      rem = Math.floor(rem / out[d]);
      if (c < 0 || c >= shape[d]) {
        inside = false;
        c = Math.min(Math.max(c, 0), shape[d] - 1);
      }
      off += c * stride;
      stride *= shape[d];
    }
    res.push(mode === 'constant' && !inside ? value : v[off]);
  }
  return res;
}

describe('pad (row-wise CPU path) against element-wise padding', () => {
  const cases: [number[], [number, number][]][] = [
    [[2, 3, 4, 5, 6], [[0, 0], [0, 0], [2, 0], [1, 1], [1, 1]]], // the VAE's causal padding
    [[3, 4], [[1, 2], [0, 3]]],
    [[5], [[2, 1]]],
    [[2, 1, 3], [[1, 1], [2, 0], [0, 0]]],
  ];
  for (const [shape, pads] of cases)
    for (const mode of ['constant', 'replicate'] as const)
      it(`${mode} [${shape}] pads ${JSON.stringify(pads)}`, () => {
        const x = rand(shape, shape.length * 7 + pads.length);
        const y = T.pad(x, pads, mode, -2.5);
        expect(y.shape).toEqual(shape.map((d, i) => d + pads[i][0] + pads[i][1]));
        expect(y.toArray()).toEqual(naivePad(x, pads, mode, -2.5));
      });
  it('pads integer tensors too', () => {
    const x = T.tensor([1, 2, 3, 4], [2, 2], { dtype: 'i64' });
    expect(T.pad(x, [[0, 1], [1, 0]], 'replicate').toArray()).toEqual([1, 1, 2, 3, 3, 4, 3, 3, 4]);
  });
});
