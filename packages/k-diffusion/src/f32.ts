// Exact single-precision arithmetic helpers for the host-side scalar math (RNG, schedules, solver coefficients).
// JS numbers are doubles: a product or sum of two f32 values rounded with Math.fround is the correctly rounded
// f32 result (double has enough bits that rounding twice is harmless for one +, -, *, /, sqrt).

export const f = Math.fround;

const fbuf = new Float32Array(1);
const ubuf = new Uint32Array(fbuf.buffer);

export function f32Bits(x: number): number {
  fbuf[0] = x;
  return ubuf[0];
}
export function bitsToF32(u: number): number {
  ubuf[0] = u >>> 0;
  return fbuf[0];
}

/** The next f32 after `x` towards +inf (dir > 0) or -inf (dir < 0); x must be a finite f32. */
function nextF32(x: number, dir: number): number {
  if (x === 0) return dir > 0 ? bitsToF32(1) : bitsToF32(0x80000001);
  const u = f32Bits(x);
  const up = x > 0 === dir > 0;
  return bitsToF32(up ? u + 1 : u - 1);
}

/**
 * Fused multiply-add rounded once to f32: what the compiler's contracted `a*b + c` (vfmadd) gives. a*b of two
 * f32 values is exact in double; the double sum can only mis-round to f32 when it lands exactly on an f32
 * midpoint, which is resolved with the sum's exact error term.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f(s);
  if (r === s || !Number.isFinite(s)) return r;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  if (err === 0) return r;
  const other = nextF32(r, s > r ? 1 : -1);
  if ((r + other) / 2 !== s) return r;
  // s is a midpoint: the exact value lies on the side of err
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}
