// 8-bit weight formats: the FP8 E4M3 codec bit by bit, int8/fp8 per-row quantization error bounds derived from
// the formats, the dequantize op, and WeightStreamer's 8-bit mode against dequantize(quantize(w)).
import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';

const enc = T.fp8e4m3Encode, dec = T.fp8e4m3Decode;
const f32bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

let seed = 7;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()) * scale);

describe('FP8 E4M3 (e4m3fn) codec', () => {
  it('decodes all 256 codes: the bias-7 grid, subnormals, max 448, NaN only at 0x7f/0xff', () => {
    for (let c = 0; c < 256; c++) {
      const s = c & 0x80 ? -1 : 1, e = (c >> 3) & 15, m = c & 7;
      if ((c & 0x7f) === 0x7f) {
        expect(dec(c)).toBeNaN();
        continue;
      }
      const want = e === 0 ? s * m / 512 : s * 2 ** (e - 7) * (8 + m) / 8;
      expect(dec(c)).toBe(want);
    }
    expect(dec(0x7e)).toBe(448);
    expect(dec(0xfe)).toBe(-448);
    expect(dec(0x01)).toBe(2 ** -9);
    expect(dec(0x08)).toBe(2 ** -6);
    expect(dec(0x38)).toBe(1);
    expect(Object.is(dec(0x80), -0)).toBe(true);
    // strictly increasing over the non-negative codes
    for (let c = 1; c <= 0x7e; c++) expect(dec(c)).toBeGreaterThan(dec(c - 1));
  });

  it('encodes every code value back to its code (both signs, -0 included)', () => {
    for (let c = 0; c < 256; c++) if ((c & 0x7f) !== 0x7f) expect(enc(dec(c))).toBe(c);
  });

  it('rounds midpoints to the even code and everything else to the nearest', () => {
    for (let c = 0; c < 0x7e; c++) {
      const lo = dec(c), hi = dec(c + 1);
      const mid = (lo + hi) / 2; // exact in f32 (at most 5 significant bits)
      expect(f32bits(mid)).toBe(f32bits(Math.fround(mid)));
      const even = c % 2 === 0 ? c : c + 1;
      expect(enc(mid)).toBe(even);
      expect(enc(-mid)).toBe(even | 0x80);
      const step = (hi - lo) / 64;
      expect(enc(mid - step)).toBe(c);
      expect(enc(mid + step)).toBe(c + 1);
    }
  });

  it('hand-computed ties, subnormals, saturation and NaN', () => {
    expect(enc(2 ** -10)).toBe(0x00); // half the smallest subnormal: tie to 0 (even)
    expect(enc(2 ** -10 * 1.5)).toBe(0x01);
    expect(enc(3 * 2 ** -10)).toBe(0x02); // 1.5 * 2^-9: tie between codes 1 and 2 -> 2
    expect(enc(5 * 2 ** -10)).toBe(0x02); // 2.5 * 2^-9 -> 2
    expect(enc(7.5 * 2 ** -9)).toBe(0x08); // between the largest subnormal (7 * 2^-9) and 2^-6: tie -> 0x08
    expect(enc(2 ** -12)).toBe(0x00);
    expect(enc(1e-30)).toBe(0x00);
    expect(enc(-1e-30)).toBe(0x80);
    expect(enc(1.0625)).toBe(0x38); // tie between 1 (m=0) and 1.125 (m=1) -> 1
    expect(enc(1.1875)).toBe(0x3a); // tie between 1.125 (m=1) and 1.25 (m=2) -> 1.25
    expect(enc(15.5)).toBe(0x58); // tie between 15 (0x57, m=7) and 16 (0x58, m=0): the carry bumps the exponent
    expect(enc(432)).toBe(0x7e); // tie between 416 (m=5) and 448 (m=6) -> 448
    expect(enc(440)).toBe(0x7e);
    expect(enc(449)).toBe(0x7e); // saturating
    expect(enc(464)).toBe(0x7e);
    expect(enc(1e9)).toBe(0x7e);
    expect(enc(Infinity)).toBe(0x7e);
    expect(enc(-Infinity)).toBe(0xfe);
    expect(enc(NaN)).toBe(0x7f);
    expect(enc(0)).toBe(0x00);
    expect(enc(-0)).toBe(0x80);
    // x is rounded to f32 first: 1 + 2^-4 + 2^-30 becomes the exact tie 1.0625 in f32 -> 1
    expect(enc(1 + 2 ** -4 + 2 ** -30)).toBe(0x38);
  });
});

/** Quantize (rows, cols) values and dequantize to f32 on the CPU. */
function roundTrip(values: Float32Array, rows: number, cols: number, format: T.Weight8Format) {
  const codes = new Uint8Array(rows * cols), scales = new Float32Array(rows);
  T.quantize8Host(values, rows, cols, format, codes, scales);
  const deq = T.dequantize8(T.tensor(codes, [rows, cols], { dtype: 'u8' }), T.tensor(scales, [rows]), format, 'f32');
  const out = deq.toFloat32Array();
  deq.dispose();
  return { codes, scales, out };
}

describe('per-row 8-bit quantization', () => {
  const rows = 37, cols = 70;
  // rows of very different magnitudes, a zero row, a row with one outlier
  const w = randn(rows * cols);
  for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) w[r * cols + i] *= 10 ** ((r % 7) - 3);
  w.fill(0, 5 * cols, 6 * cols);
  w[9 * cols + 3] = 1000;

  it('int8: s = amax/127 per row, codes in [-127, 127], |w - deq| <= s * (1/2 + 254 * 2^-24)', () => {
    const { codes, scales, out } = roundTrip(w, rows, cols, 'int8');
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let i = 0; i < cols; i++) amax = Math.max(amax, Math.abs(w[r * cols + i]));
      expect(scales[r]).toBe(Math.fround(amax / 127));
      const s = scales[r];
      for (let i = 0; i < cols; i++) {
        const k = r * cols + i;
        const q = (codes[k] << 24) >> 24;
        expect(q).toBeGreaterThanOrEqual(-127);
        expect(q).toBeLessThanOrEqual(127);
        // the f32 quotient (<= 127 * 2^-24 off), the rounding to an integer (1/2), the f32 product (127 * s * 2^-24)
        expect(Math.abs(w[k] - out[k])).toBeLessThanOrEqual(s * (0.5 + 254 * 2 ** -24));
        expect(out[k]).toBe(Math.fround(q * s));
      }
    }
    // the zero row: scale 0, codes 0, exact zeros back
    expect(scales[5]).toBe(0);
    expect(Array.from(out.subarray(5 * cols, 6 * cols)).every((x) => x === 0)).toBe(true);
    // the row's largest value maps to +-127 exactly
    expect((codes[9 * cols + 3] << 24) >> 24).toBe(127);
  });

  it('fp8: s = amax/448 per row, |w - deq| <= s * (half an e4m3 ulp of w/s + |w/s| * 2^-23) + |deq| * 2^-24', () => {
    const { codes, scales, out } = roundTrip(w, rows, cols, 'fp8');
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let i = 0; i < cols; i++) amax = Math.max(amax, Math.abs(w[r * cols + i]));
      expect(scales[r]).toBe(Math.fround(amax / 448));
      const s = scales[r];
      for (let i = 0; i < cols; i++) {
        const k = r * cols + i;
        expect(codes[k] & 0x7f).not.toBe(0x7f); // never NaN
        if (s === 0) {
          expect(out[k]).toBe(0);
          continue;
        }
        const x = Math.abs(w[k] / s);
        // e4m3: 3 mantissa bits -> half-ulp 2^(e-4) for normals (e = floor(log2 x) >= -6), 2^-10 for subnormals
        const halfUlp = x >= 2 ** -6 ? 2 ** (Math.floor(Math.log2(x)) - 4) : 2 ** -10;
        expect(Math.abs(w[k] - out[k])).toBeLessThanOrEqual(s * (halfUlp + x * 2 ** -23) + Math.abs(out[k]) * 2 ** -24);
        expect(out[k]).toBe(Math.fround(T.fp8e4m3Decode(codes[k]) * s));
      }
    }
    expect(codes[9 * cols + 3]).toBe(0x7e); // the outlier is the row's amax: exactly 448
  });

  it('quantize8Host agrees with the element-wise definitions (int8 ties to even, the inline e4m3 path)', () => {
    // row amax 127 (int8) / 448 (fp8) makes the scale exactly 1, so the quotients are the values themselves
    const ties = Float32Array.of(127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 3.4999, -0.25);
    const codes = new Uint8Array(ties.length);
    const scales = new Float32Array(1);
    T.quantize8Host(ties, 1, ties.length, 'int8', codes, scales);
    expect(scales[0]).toBe(1);
    expect([...codes].map((c) => (c << 24) >> 24)).toEqual([127, 0, 2, 2, 0, -2, -2, 126, -126, 3, 0]);
    // random rows over every e4m3 range (subnormals, normals, the top binade): codes equal fp8e4m3Encode(fround(v / s))
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const rows = 4, cols = 4096;
    const v = Float32Array.from({ length: rows * cols }, () => (rnd() - 0.5) * 2 ** (rnd() * 24 - 20));
    const c8 = new Uint8Array(v.length);
    const s8 = new Float32Array(rows);
    T.quantize8Host(v, rows, cols, 'fp8', c8, s8);
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < cols; i++) expect(c8[r * cols + i]).toBe(T.fp8e4m3Encode(Math.fround(v[r * cols + i] / s8[r])));
  });
  it('quantize8HostBf16 gives the codes and scales of quantize8Host on the same values', () => {
    const rows = 5, cols = 333;
    const f = randn(rows * cols, 0.05);
    f.fill(0, 2 * cols, 3 * cols); // an all-zero row: scale 0
    f[4 * cols + 7] = -3; // a row whose amax is negative
    const bits = new Uint16Array(new Uint32Array(f.buffer).map((u) => u >>> 16)); // truncate to bf16
    const widened = new Float32Array(new Uint32Array(bits).map((b) => b << 16).buffer);
    for (const format of T.WEIGHT8_FORMATS) {
      const [c1, c2] = [new Uint8Array(rows * cols + 3), new Uint8Array(rows * cols + 3)];
      const [s1, s2] = [new Float32Array(rows + 1), new Float32Array(rows + 1)];
      T.quantize8Host(widened, rows, cols, format, c1, s1, 3, 1);
      T.quantize8HostBf16(bits, rows, cols, format, c2, s2, 3, 1);
      expect([...c2]).toEqual([...c1]);
      expect([...s2]).toEqual([...s1]);
      expect(s2[3]).toBe(0);
    }
    const inf = Uint16Array.of(0x3f80, 0x7f80); // 1, +Infinity
    expect(() => T.quantize8HostBf16(inf, 1, 2, 'int8', new Uint8Array(2), new Float32Array(1))).toThrow(/non-finite/);
    expect(() => T.quantize8HostBf16(Uint16Array.of(0xffc0, 0), 1, 2, 'fp8', new Uint8Array(2), new Float32Array(1))).toThrow(T.QuantizeError);
  });
  it('rejects non-finite weights and bad formats with typed errors', () => {
    expect(() => T.quantize8Host(Float32Array.of(1, NaN), 1, 2, 'int8', new Uint8Array(2), new Float32Array(1))).toThrow(T.QuantizeError);
    expect(() => T.quantize8Host(Float32Array.of(1, Infinity), 1, 2, 'fp8', new Uint8Array(2), new Float32Array(1))).toThrow(/non-finite/);
    expect(() => T.quantize8(T.zeros([2, 2]), 'int4' as T.Weight8Format)).toThrow(/int8 or fp8/);
    expect(() => T.quantize8(T.zeros([4]), 'int8')).toThrow(/2-D/);
    expect(() => T.dequantize8(T.zeros([2, 3], { dtype: 'u8' }), T.zeros([3]), 'int8')).toThrow(/scales/);
  });

  it('dequantize8 to bf16/f16 equals the f32 result rounded (one rounding of the f32 product)', () => {
    for (const format of T.WEIGHT8_FORMATS) {
      const q = T.quantize8(T.tensor(w, [rows, cols]), format);
      const ref = T.dequantize8(q.codes, q.scales, format, 'f32');
      for (const dt of ['bf16', 'f16'] as const) {
        const got = T.dequantize8(q.codes, q.scales, format, dt);
        const want = T.cast(ref, dt);
        expect(Array.from(got.toHost() as Uint16Array)).toEqual(Array.from(want.toHost() as Uint16Array));
        got.dispose();
        want.dispose();
      }
      // into a view at an offset (the streamer's scratch)
      const big = T.zeros([rows * cols + 8]);
      const view = T.reshape(T.slice(big, 0, 8, 8 + rows * cols), [rows, cols]);
      T.dequantize8Into(view, q.codes, q.scales, format);
      expect(Array.from(big.toFloat32Array().subarray(8))).toEqual(Array.from(ref.toFloat32Array()));
      expect(Array.from(big.toFloat32Array().subarray(0, 8))).toEqual(new Array(8).fill(0));
      T.disposeAll([ref, big, view, q.codes, q.scales]);
    }
  });

  it('roundTrip8 keeps the dtype and equals dequantize(quantize(w))', () => {
    const t = T.cast(T.tensor(w, [rows, cols]), 'bf16');
    const rt = T.roundTrip8(t, 'fp8');
    expect(rt.dtype).toBe('bf16');
    const q = T.quantize8(t, 'fp8');
    const d = T.dequantize8(q.codes, q.scales, 'fp8', 'bf16');
    expect(Array.from(rt.toHost() as Uint16Array)).toEqual(Array.from(d.toHost() as Uint16Array));
    T.disposeAll([t, rt, q.codes, q.scales, d]);
  });
});

describe('WeightStreamer with 8-bit weights', () => {
  // matrices (quantized: 2-D, >= 16 columns) beside a bias, a norm weight and a narrow matrix (kept in the model dtype)
  const groups: T.StreamGroup[] = [
    { name: 'b0', params: [{ key: 'b0.w', shape: [24, 32] }, { key: 'b0.bias', shape: [24] }, { key: 'b0.w2', shape: [5, 17] }] },
    { name: 'b1', params: [{ key: 'b1.norm', shape: [32] }, { key: 'b1.narrow', shape: [4, 8] }] },
    { name: 'b2', params: [{ key: 'b2.w', shape: [40, 24] }, { key: 'b2.w1', shape: [3, 16] }, { key: 'b2.bias', shape: [40] }] },
  ];
  const source = new Map<string, T.Tensor>();
  for (const g of groups) for (const p of g.params) source.set(p.key, T.tensor(randn(p.shape.reduce((a, b) => a * b, 1), 0.2), p.shape));
  const read = (k: string) => T.reshape(source.get(k)!, source.get(k)!.shape);

  for (const format of T.WEIGHT8_FORMATS)
    for (const dtype of ['bf16', 'f32'] as const)
      it(`${format}, ${dtype}: matrices equal roundTrip8 of the ${dtype} weights, the rest exact, for 1..3 slots and both host modes`, () => {
        const want = new Map<string, number[]>();
        for (const [k, t] of source) {
          const typed = T.cast(t, dtype);
          const v = T.isQuantizable8(t.shape) ? T.roundTrip8(typed, format) : T.cast(typed, dtype);
          want.set(k, Array.from(v.toHost() as Uint16Array | Float32Array));
          v.dispose();
          typed.dispose();
        }
        for (const hostCopy of ['packed', 'source'] as const)
          for (const slots of [1, 2, 3]) {
            const s = T.WeightStreamer.create(groups, read, { dtype, device: 'cpu', slots, hostCopy, weights8bit: format });
            expect(s.weights8bit).toBe(format);
            for (let pass = 0; pass < 3; pass++)
              for (const g of groups) {
                const views = s.acquire(g.name);
                for (const p of g.params) {
                  const t = views.get(p.key)!;
                  expect(t.shape).toEqual(p.shape);
                  expect(t.dtype).toBe(dtype);
                  expect(Array.from(t.toHost() as Uint16Array | Float32Array), `${p.key} pass ${pass}`).toEqual(want.get(p.key));
                }
                s.release(g.name);
              }
            s.dispose();
          }
      });

  it('copies fewer bytes: codes + scales instead of the model dtype; the scratch holds the largest group', () => {
    const g0 = T.streamGroupLayout(groups[0], 'bf16', 'int8');
    // b0: 24x32 codes (768, 16-aligned) + 5x17 codes (85 -> 96 padded) + 29 scales + 24 bias values
    expect(g0.copyBytes).toBe(768 + 96 + 29 * 4 + 24 * 2);
    expect(T.streamGroupBytes(groups[0], 'bf16')).toBe((768 + 24 + 85) * 2);
    // scratch: 768 + 85 values, each matrix starting at a multiple of 16 bytes (8 bf16 values)
    expect(g0.scratchBytes).toBe((768 + 88) * 2);
    expect(T.streamGroupLayout(groups[1], 'bf16', 'fp8')).toEqual({ copyBytes: (32 + 32) * 2, scratchBytes: 0 });
    expect(T.streamGroupLayout(groups[0], 'bf16')).toEqual({ copyBytes: (768 + 24 + 85) * 2, scratchBytes: 0 });
    const before = T.memoryStats('cpu').currentBytes;
    const s = T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cpu', slots: 2, weights8bit: 'fp8' });
    // per slot: plain part of the largest (b1: 64 values), codes (b2: 960 + 48), scales (b2: 40 + 3); plus one scratch (b2: 960 + 48)
    const slot = 64 * 2 + (960 + 48) + 43 * 4;
    expect(s.deviceBytes).toBe(2 * slot + (960 + 48) * 2);
    expect(T.memoryStats('cpu').currentBytes - before).toBe(s.deviceBytes);
    s.dispose();
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
  });

  it('needs the previous group released before the next is dequantized into the shared scratch', () => {
    const s = T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cpu', slots: 3, weights8bit: 'int8' });
    s.acquire('b0');
    expect(() => s.acquire('b1')).toThrow(/release b0 before acquiring b1/);
    s.acquire('b0'); // the same group again is fine (the DiT's step-skip hook does this)
    s.release('b0');
    s.acquire('b1');
    s.release('b1');
    s.dispose();
    expect(() => T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cpu', weights8bit: 'int4' as T.Weight8Format })).toThrow(/int8 or fp8/);
  });
});
