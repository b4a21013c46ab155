import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';

describe('writeRegion (in-place box copy)', () => {
  it('writes a 3-d box at an offset and leaves the rest alone', () => {
    const dst = T.zeros([2, 3, 4]);
    const src = T.tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const r = T.writeRegion(dst, src, [1, 1, 1]);
    expect(r).toBe(dst);
    const v = dst.toArray();
    const at = (a: number, b: number, c: number) => v[a * 12 + b * 4 + c];
    expect([at(1, 1, 1), at(1, 1, 2), at(1, 1, 3), at(1, 2, 1), at(1, 2, 2), at(1, 2, 3)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(v.reduce((s, x) => s + x, 0)).toBe(21);
  });
  it('writes through a view with an offset (outer slice)', () => {
    const base = T.zeros([3, 2]);
    const row = T.slice(base, 0, 2, 3);
    T.writeRegion(row, T.tensor([7, 8], [1, 2]), [0, 0]);
    expect(base.toArray()).toEqual([0, 0, 0, 0, 7, 8]);
  });
  it('rejects boxes that do not fit, rank and dtype mismatches', () => {
    const dst = T.zeros([2, 2]);
    expect(() => T.writeRegion(dst, T.zeros([1, 2]), [1, 1])).toThrow(T.ShapeError);
    expect(() => T.writeRegion(dst, T.zeros([2]), [0])).toThrow(T.ShapeError);
    expect(() => T.writeRegion(dst, T.zeros([1, 1], { dtype: 'f16' }), [0, 0])).toThrow(T.DTypeError);
    expect(() => T.writeRegion(dst, T.zeros([1, 1]), [-1, 0])).toThrow(T.ShapeError);
  });
  it('accepts an empty source as a no-op', () => {
    const dst = T.ones([2, 2]);
    T.writeRegion(dst, T.zeros([0, 2]), [2, 0]);
    expect(dst.toArray()).toEqual([1, 1, 1, 1]);
  });
});
