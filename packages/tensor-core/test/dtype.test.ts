import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';

describe('dtype conversions', () => {
  it('bf16 rounds to nearest, ties to even', () => {
    // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to the even mantissa (1)
    expect(T.bf16BitsToF32(T.f32ToBf16Bits(1 + 2 ** -8))).toBe(1);
    // 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even): rounds up
    expect(T.bf16BitsToF32(T.f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(T.bf16BitsToF32(T.f32ToBf16Bits(1 + 2 ** -8 + 2 ** -12))).toBe(1 + 2 ** -7);
    expect(T.f32ToBf16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(T.bf16BitsToF32(T.f32ToBf16Bits(NaN)))).toBe(true);
    expect(T.bf16BitsToF32(T.f32ToBf16Bits(Infinity))).toBe(Infinity);
  });
  it('f16 rounds to nearest even, handles subnormals and overflow', () => {
    expect(T.f16BitsToF32(T.f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(T.f16BitsToF32(T.f32ToF16Bits(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(T.f16BitsToF32(T.f32ToF16Bits(65504))).toBe(65504);
    expect(T.f16BitsToF32(T.f32ToF16Bits(65520))).toBe(Infinity); // rounds past the max
    expect(T.f16BitsToF32(T.f32ToF16Bits(2 ** -24))).toBe(2 ** -24); // smallest subnormal
    expect(T.f16BitsToF32(T.f32ToF16Bits(3 * 2 ** -25))).toBe(2 ** -23); // tie between 1 and 2 subnormal units -> even (2)
    expect(T.f16BitsToF32(T.f32ToF16Bits(2 ** -26))).toBe(0);
    expect(T.f32ToF16Bits(-2)).toBe(0xc000);
  });
  it('every f16 bit pattern survives f16 -> f32 -> f16', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = T.f16BitsToF32(h);
      if (Number.isNaN(f)) continue;
      expect(T.f32ToF16Bits(f)).toBe(h);
    }
  });
  it('casts between tensor dtypes', () => {
    const x = T.tensor([1.7, -2.5, 300], [3]);
    expect(T.cast(x, 'i32').toArray()).toEqual([1, -2, 300]);
    expect(T.cast(x, 'bf16').toArray()).toEqual([1.703125, -2.5, 300]);
    expect(T.cast(T.cast(x, 'i64'), 'f32').toArray()).toEqual([1, -2, 300]);
    expect(T.cast(T.tensor([0, 2, -1], [3]), 'bool').toArray()).toEqual([0, 1, 1]);
  });
});
