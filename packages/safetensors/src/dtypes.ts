import type { DType } from '@framepack/tensor-core';

/** Every dtype name the safetensors format defines, with its element size. */
export const ST_DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
} as const;
export type StDType = keyof typeof ST_DTYPE_BYTES;

/** The tensor-core dtype a file dtype loads as by default (exact where tensor-core has the type). */
export const NATIVE_DTYPE: Record<StDType, DType> = {
  BOOL: 'bool', U8: 'u8', I8: 'i32', I16: 'i32', U16: 'i32', U32: 'i64', I32: 'i32', I64: 'i64', U64: 'i64',
  F16: 'f16', BF16: 'bf16', F32: 'f32', F64: 'f32', F8_E4M3: 'f32', F8_E5M2: 'f32', F8_E8M0: 'f32',
};
export const FILE_DTYPE: Partial<Record<DType, StDType>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', i64: 'I64', u8: 'U8', bool: 'BOOL' };

function f8e4m3(b: number): number {
  const s = b & 0x80 ? -1 : 1, e = (b >> 3) & 0xf, m = b & 7;
  if (e === 0xf && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
function f8e5m2(b: number): number {
  const s = b & 0x80 ? -1 : 1, e = (b >> 2) & 0x1f, m = b & 3;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -16 : s * (1 + m / 4) * 2 ** (e - 15);
}

/**
 * Decode raw little-endian bytes of a file dtype that tensor-core stores differently (F64, I8, I16, U16, U32, U64, F8)
 * into the host array of its NATIVE_DTYPE.
 */
export function widen(dt: StDType, bytes: Uint8Array): Float32Array | Int32Array | BigInt64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / ST_DTYPE_BYTES[dt];
  switch (dt) {
    case 'F64':
      return Float32Array.from({ length: n }, (_, i) => dv.getFloat64(i * 8, true));
    case 'I8':
      return Int32Array.from({ length: n }, (_, i) => dv.getInt8(i));
    case 'I16':
      return Int32Array.from({ length: n }, (_, i) => dv.getInt16(i * 2, true));
    case 'U16':
      return Int32Array.from({ length: n }, (_, i) => dv.getUint16(i * 2, true));
    case 'U32':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(dv.getUint32(i * 4, true)));
    case 'U64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt.asIntN(64, dv.getBigUint64(i * 8, true)));
    case 'F8_E4M3':
      return Float32Array.from(bytes, f8e4m3);
    case 'F8_E5M2':
      return Float32Array.from(bytes, f8e5m2);
    case 'F8_E8M0':
      return Float32Array.from(bytes, (b) => (b === 0xff ? NaN : 2 ** (b - 127)));
    default:
      throw new Error(`widen: ${dt} needs no widening`);
  }
}
