import { DTypeError } from './errors.js';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'i64' | 'u8' | 'bool';
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'i64', 'u8', 'bool'];

/** Host representation of each dtype: f16/bf16 keep their raw 16-bit patterns. */
export type HostArray = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, i64: 8, u8: 1, bool: 1 };

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16' || d === 'bf16';
}
export function isInteger(d: DType): boolean {
  return d === 'i32' || d === 'i64' || d === 'u8';
}
export function assertDType(d: string): asserts d is DType {
  if (!(DTYPES as readonly string[]).includes(d)) throw new DTypeError(`unknown dtype '${d}' (expected one of ${DTYPES.join(', ')})`);
}

export function allocHost(dtype: DType, numel: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(numel);
    case 'f16':
    case 'bf16':
      return new Uint16Array(numel);
    case 'i32':
      return new Int32Array(numel);
    case 'i64':
      return new BigInt64Array(numel);
    case 'u8':
    case 'bool':
      return new Uint8Array(numel);
  }
}

// ---- float conversions (round to nearest, ties to even, as torch does) ----
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
export function bf16BitsToF32(b: number): number {
  u32buf[0] = b << 16;
  return f32buf[0];
}

export function f32ToF16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // subnormal half (or zero): shift the full mantissa, round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let f16F32: Float32Array | null = null;
const halfTables: Partial<Record<'f16>bf16' | 'bf16>f16', Uint16Array>> = {};
/** The f32 value of every f16 bit pattern (exact; built once): decoding by table is ~10x faster than by formula. */
function f16Table(): Float32Array {
  return (f16F32 ??= Float32Array.from({ length: 65536 }, (_, h) => f16BitsToF32(h)));
}
/**
 * Bit patterns of one half type converted to the other (f16 <-> bf16) by a 64K table: the same bits as decoding to
 * f32 and rounding to the target (what a cast does), at table-lookup speed. Checkpoints stored in one half type and
 * run in the other (the text encoder in f16 run as bf16, SigLIP in bf16 run as f16) go through this for every weight.
 */
export function convertHalfBits(src: Uint16Array, from: 'f16' | 'bf16', to: 'f16' | 'bf16', dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length !== src.length) throw new RangeError(`convertHalfBits: ${src.length} values into ${dst.length}`);
  if (from === to) {
    dst.set(src);
    return dst;
  }
  const t = (halfTables[from === 'f16' ? 'f16>bf16' : 'bf16>f16'] ??=
    from === 'f16' ? Uint16Array.from(f16Table(), (x) => f32ToBf16Bits(x)) : Uint16Array.from({ length: 65536 }, (_, b) => f32ToF16Bits(bf16BitsToF32(b))));
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/** Decode any host array to f32 values (copy unless already f32, then the same array is returned). */
export function hostToF32(dtype: DType, data: HostArray): Float32Array {
  if (dtype === 'f32') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'bf16') {
    const src = data as Uint16Array;
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) o32[i] = src[i] << 16;
  } else if (dtype === 'f16') {
    const src = data as Uint16Array;
    const t = f16Table();
    for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  } else if (dtype === 'i64') {
    const src = data as BigInt64Array;
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
  } else {
    out.set(data as Int32Array | Uint8Array);
  }
  return out;
}

/** Encode f32 values as the host array of `dtype` (rounding to nearest even for halves, truncation toward zero for ints). */
export function f32ToHost(dtype: DType, src: Float32Array | Float64Array): HostArray {
  const n = src.length;
  switch (dtype) {
    case 'f32':
      return src instanceof Float32Array ? src : Float32Array.from(src);
    case 'bf16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToBf16Bits(src[i]);
      return out;
    }
    case 'f16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(src[i]);
      return out;
    }
    case 'i32':
      return Int32Array.from(src, (v) => Math.trunc(v));
    case 'i64':
      return BigInt64Array.from(src, (v) => BigInt(Math.trunc(v)));
    case 'u8':
      return Uint8Array.from(src, (v) => Math.trunc(v));
    case 'bool':
      return Uint8Array.from(src, (v) => (v !== 0 ? 1 : 0));
  }
}

/** Values of an integer host array as JS numbers (i64 converted exactly up to 2^53). */
export function hostToF64(dtype: DType, data: HostArray): Float64Array {
  if (dtype === 'i64') return Float64Array.from(data as BigInt64Array, (v) => Number(v));
  if (dtype === 'f32' || dtype === 'bf16' || dtype === 'f16') return Float64Array.from(hostToF32(dtype, data));
  return Float64Array.from(data as Int32Array | Uint8Array);
}
