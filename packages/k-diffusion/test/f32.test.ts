import { describe, expect, it } from 'vitest';
import { fmaf } from '../src/f32.js';

describe('fmaf', () => {
  it('rounds a*b + c once, also when the double sum lands on an f32 midpoint', () => {
    const a = 1 + 2 ** -12; // a*a = 1 + 2^-11 + 2^-24: exactly halfway between two f32 values
    const lo = 1 + 2 ** -11, hi = 1 + 2 ** -11 + 2 ** -23;
    expect(fmaf(a, a, 0)).toBe(lo); // a tie goes to the even neighbour
    expect(fmaf(a, a, 2 ** -80)).toBe(hi); // a hair above the midpoint: up (a double sum would lose c)
    expect(fmaf(a, a, -(2 ** -80))).toBe(lo);
    expect(fmaf(-a, a, -(2 ** -80))).toBe(-hi);
    expect(Math.fround(a * a + 2 ** -80)).toBe(lo); // what rounding twice gives
  });

  it('agrees with mul-then-add when the product is exact in f32', () => {
    expect(fmaf(0.5, 3, 0.25)).toBe(1.75);
    expect(fmaf(2, Math.fround(0.1), Math.fround(0.2))).toBe(Math.fround(Math.fround(0.2) + Math.fround(0.2)));
  });
});
