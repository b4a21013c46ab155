/**
 * Rounding the way the Python reference does it. numpy's `np.round` and Python's `round(x, n)` round exact ties to
 * the even neighbour ("banker's rounding"); JavaScript's Math.round and toFixed round ties up. The MagCache step
 * resampling lands on exact .5 positions (e.g. 25 -> 49 steps), and calibration ratios of bf16 residuals are often
 * exact binary fractions such as 1.0078125, so the difference is visible in both places.
 */

/** Round to the nearest integer, exact ties to the even one (numpy `np.round(x)`). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const lo = Math.floor(x);
  const frac = x - lo; // exact for doubles: x and floor(x) share the exponent range
  if (frac < 0.5) return lo;
  if (frac > 0.5) return lo + 1;
  return lo % 2 === 0 ? lo : lo + 1;
}

/**
 * Round to `digits` decimals like Python's `round(x, digits)`: the exact binary value of x decides, and only an exact
 * decimal tie goes to the even last digit. toFixed(d) already rounds the exact value correctly except on ties, where
 * it rounds away from zero; ties are detected on the exact decimal expansion (toFixed(100) shows every digit of doubles above ~1e-80, enough to tell a tie at <= 20 decimals).
 */
export function roundDecimalsHalfEven(x: number, digits: number): number {
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) throw new RangeError(`digits must be an integer in [0, 20], got ${digits}`);
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 1e21) return x; // toFixed switches to exponent notation; such values have no decimals to round anyway
  if (a < 1e-80) return x < 0 ? -0 : 0; // far below any kept digit (and beyond toFixed(100)'s exact digits)
  const exact = a.toFixed(100);
  const dot = exact.indexOf('.');
  const rest = exact.slice(dot + 1 + digits);
  const isTie = /^50*$/.test(rest);
  let out: number;
  if (!isTie) out = Number(a.toFixed(digits));
  else {
    const kept = exact.slice(0, dot + 1 + digits); // truncated value, tie -> keep if last digit even
    const lastDigit = Number(kept[kept.length - 1] === '.' ? kept[kept.length - 2] : kept[kept.length - 1]);
    out = lastDigit % 2 === 0 ? Number(kept) : Number(a.toFixed(digits));
  }
  return x < 0 ? -out : out;
}
