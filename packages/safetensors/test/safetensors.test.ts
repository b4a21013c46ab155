import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import { openCheckpoint, openSafetensors, directReaderAs, SafetensorsError, writeSafetensors } from '@framepack/safetensors';

const dir = mkdtempSync(join(tmpdir(), 'st-'));
const GOLDEN = join(__dirname, '../../../../shared/golden');

/** Build a file by hand: header object + raw data bytes. */
function rawFile(name: string, header: unknown, data: Uint8Array, headerLenOverride?: bigint): string {
  const hb = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLenOverride ?? BigInt(hb.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, hb, data]));
  return p;
}
function expectCode(fn: () => unknown, code: string, mention: string) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    expect((e as SafetensorsError).code).toBe(code);
    expect((e as Error).message).toContain(mention);
    return;
  }
  throw new Error('expected an error');
}

describe('safetensors round trip', () => {
  it('writes and reads every tensor-core dtype with metadata', () => {
    const ts = {
      a: T.tensor([1.5, -2, 3.25, 0], [2, 2]),
      b: T.tensor([1.5, -2, 3.25], [3], { dtype: 'bf16' }),
      c: T.tensor([0.1, 65504, -1e-5], [3], { dtype: 'f16' }),
      d: T.tensor([1, -7, 2147483647], [3], { dtype: 'i32' }),
      e: T.tensor([1n, -9007199254740993n], [2], { dtype: 'i64' }),
      f: T.tensor([0, 255, 7], [3], { dtype: 'u8' }),
      g: T.tensor([1, 0, 1], [3], { dtype: 'bool' }),
      empty: T.zeros([0, 4]),
    };
    const p = join(dir, 'rt.safetensors');
    writeSafetensors(p, ts, { format: 'pt', note: 'x' });
    const f = openSafetensors(p);
    expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(f.keys().sort()).toEqual(Object.keys(ts).sort());
    for (const [k, t] of Object.entries(ts)) {
      const r = f.tensor(k);
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect(Array.from(r.toHost() as ArrayLike<unknown>)).toEqual(Array.from(t.toHost() as ArrayLike<unknown>));
    }
    expect(f.info('e')).toMatchObject({ dtype: 'I64', shape: [2] });
    const cast = f.tensor('a', { dtype: 'bf16' });
    expect(cast.dtype).toBe('bf16');
    expect(cast.toArray()).toEqual([1.5, -2, 3.25, 0]);
    f.close();
    expect(readdirSync(dir).some((n) => n.includes('partial'))).toBe(false);
  });

  it('reads the other file dtypes by widening them (F64, I8, I16, U16, F8)', () => {
    const f64 = new Float64Array([1.25, -3]);
    const i16 = new Int16Array([-5, 300]);
    const data = new Uint8Array([...new Uint8Array(f64.buffer), ...new Uint8Array(i16.buffer), 0xfe, 0x38, 0x3c]);
    const p = rawFile('wide.safetensors', {
      d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      s: { dtype: 'I16', shape: [2], data_offsets: [16, 20] },
      i: { dtype: 'I8', shape: [1], data_offsets: [20, 21] },
      e4: { dtype: 'F8_E4M3', shape: [1], data_offsets: [21, 22] },
      e5: { dtype: 'F8_E5M2', shape: [1], data_offsets: [22, 23] },
    }, data);
    const f = openSafetensors(p);
    expect(f.tensor('d').toArray()).toEqual([1.25, -3]);
    expect(f.tensor('s').toArray()).toEqual([-5, 300]);
    expect(f.tensor('i').toArray()).toEqual([-2]);
    expect(f.tensor('e4').toArray()).toEqual([1]); // 0x38 = 0 0111 000 -> 2^0
    expect(f.tensor('e5').toArray()).toEqual([1]); // 0x3c = 0 01111 00 -> 2^0
  });
});

describe('safetensors validation', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  it('rejects a header that is too large', () => expectCode(() => openSafetensors(rawFile('big.safetensors', ok, new Uint8Array(8), 200_000_000n)), 'E_HEADER_TOO_LARGE', 'big.safetensors'));
  it('rejects a truncated header', () => expectCode(() => openSafetensors(rawFile('trh.safetensors', ok, new Uint8Array(0), 5000n)), 'E_TRUNCATED', 'trh.safetensors'));
  it('rejects truncated data and names the tensor', () => expectCode(() => openSafetensors(rawFile('trd.safetensors', ok, new Uint8Array(4))), 'E_TRUNCATED', '[a]'));
  it('rejects invalid JSON', () => {
    const p = join(dir, 'json.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(3n);
    writeFileSync(p, Buffer.concat([len, Buffer.from('{x]')]));
    expectCode(() => openSafetensors(p), 'E_HEADER', 'not valid JSON');
  });
  it('rejects an unknown dtype', () => expectCode(() => openSafetensors(rawFile('dt.safetensors', { a: { dtype: 'F12', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2))), 'E_DTYPE', 'F12'));
  it('rejects overlapping tensors', () =>
    expectCode(() => openSafetensors(rawFile('ov.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12))), 'E_OFFSETS', 'overlaps'));
  it('rejects offsets that disagree with the shape', () => expectCode(() => openSafetensors(rawFile('sz.safetensors', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))), 'E_OFFSETS', 'needs 12'));
  it('names a missing tensor', () => expectCode(() => openSafetensors(rawFile('ok.safetensors', ok, new Uint8Array(8))).tensor('zz'), 'E_MISSING', 'zz'));
  it('reports a missing file', () => expectCode(() => openSafetensors(join(dir, 'nope.safetensors')), 'E_IO', 'ENOENT'));
});

describe('sharded checkpoints', () => {
  it('reads through a *.index.json and from a folder', () => {
    const d = mkdtempSync(join(tmpdir(), 'shard-'));
    writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), { x: T.tensor([1, 2], [2]) });
    writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), { y: T.tensor([3], [1]) });
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 12 }, weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } }));
    const c = openCheckpoint(d);
    expect(c.keys().sort()).toEqual(['x', 'y']);
    expect(c.tensor('y').toArray()).toEqual([3]);
    expect(c.info('x').shape).toEqual([2]);
    c.close();
    writeFileSync(join(d, 'bad.safetensors.index.json'), JSON.stringify({ weight_map: { z: 'gone.safetensors' } }));
    expectCode(() => openCheckpoint(join(d, 'bad.safetensors.index.json')), 'E_INDEX', 'gone.safetensors');
  });
});

describe('raw reads (weight streaming straight into pinned buffers)', () => {
  it('readInto copies the stored bytes; directReaderAs answers for the model dtype (and F16 as bf16) at the exact size', () => {
    const d = mkdtempSync(join(tmpdir(), 'raw-'));
    const w = T.tensor([1.5, -2, 3.25, 0.125], [2, 2], { dtype: 'bf16' });
    writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), { 'm.w': w });
    writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), { 'm.f': T.tensor([1, 2], [2]) });
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'm.w': 'model-00001-of-00002.safetensors', 'm.f': 'model-00002-of-00002.safetensors' } }));
    const c = openCheckpoint(d);
    try {
      const dst = new Uint8Array(8);
      expect(c.readInto!('m.w', dst)).toBe(true);
      expect(Array.from(new Uint16Array(dst.buffer))).toEqual(Array.from(w.toHost() as Uint16Array));
      expectCode(() => c.readInto!('m.w', new Uint8Array(6)), 'E_IO', 'the destination 6');
      const raw = directReaderAs(c, 'bf16', 'm.')!;
      const again = new Uint8Array(8);
      expect(raw('w', again)).toBe(true);
      expect(again).toEqual(dst);
      expect(raw('f', new Uint8Array(4))).toBe(false); // stored F32: needs a cast
      expect(raw('w', new Uint8Array(4))).toBe(false); // another size: read (and fail) through tensor()
      expect(directReaderAs(c, 'f32', 'm.')!('f', new Uint8Array(8))).toBe(true);
      expect(directReaderAs(c, 'i32', 'm.')!('w', new Uint8Array(8))).toBe(false); // not a half type: read and cast
      // a source without raw reads gets no raw reader
      expect(directReaderAs({ keys: () => [], has: () => false, info: c.info.bind(c), tensor: c.tensor.bind(c), close: () => {} }, 'bf16')).toBeUndefined();
    } finally {
      c.close();
    }
  });

  it('between the half types by table: the same bits as tensor() with a cast, for all 65536 patterns both ways', () => {
    const d = mkdtempSync(join(tmpdir(), 'raw16-'));
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    writeSafetensors(join(d, 'h.safetensors'), { h: T.fromHost(bits, [256, 256], 'f16'), b: T.fromHost(bits.slice(), [256, 256], 'bf16') });
    const f = openSafetensors(join(d, 'h.safetensors'));
    try {
      for (const [key, to, formula] of [
        ['h', 'bf16', (x: number) => T.f32ToBf16Bits(T.f16BitsToF32(x))],
        ['b', 'f16', (x: number) => T.f32ToF16Bits(T.bf16BitsToF32(x))],
      ] as const) {
        const dst = new Uint8Array(65536 * 2 + 2);
        const view = dst.subarray(2); // at an offset, as inside a packed buffer
        expect(directReaderAs(f, to)!(key, view)).toBe(true);
        const want = f.tensor(key, { dtype: to }).toHost() as Uint16Array;
        expect(Buffer.compare(Buffer.from(view), Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${key} -> ${to}`).toBe(0);
        // and that cast is the formula: decode to f32, round to the target (NaNs quieted), pattern by pattern
        expect(Array.from(want)).toEqual(Array.from(bits, formula));
      }
    } finally {
      f.close();
    }
  });

});

describe.skipIf(!existsSync(GOLDEN))('golden files', () => {
  it('opens every ../shared/golden/*/*.safetensors and reads every tensor', () => {
    let count = 0;
    for (const c of readdirSync(GOLDEN, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
      for (const f of readdirSync(join(GOLDEN, c)).filter((n) => n.endsWith('.safetensors'))) {
        const st = openSafetensors(join(GOLDEN, c, f));
        for (const k of st.keys()) {
          T.tidy(() => {
            const t = st.tensor(k);
            expect(t.shape).toEqual(st.info(k).shape);
          });
          count++;
        }
        st.close();
      }
    }
    expect(count).toBeGreaterThan(100);
  });
});
