// CUDA backend: every op against the CPU backend (test/cuda-checks.ts) plus allocator, budget and stream checks.
// Without a GPU (CI) the device tests are skipped with the reason; the loader must still answer cleanly.
import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import { cudaChecks } from './cuda-checks.js';

const gpu = T.isDeviceAvailable('cuda');
let reason = '';
try {
  T.backendFor('cuda');
} catch (e) {
  reason = (e as Error).message;
}
const skipNote = gpu ? '' : ` [skipped: no CUDA device here: ${reason}]`;

describe('CUDA loader (any machine)', () => {
  it('reports availability without throwing, with a reason when unavailable', () => {
    expect(typeof gpu).toBe('boolean');
    if (!gpu) {
      expect(reason).toMatch(/device 'cuda' is not available/);
      expect(() => T.zeros([2], { device: 'cuda' })).toThrow(T.DeviceError);
    }
  });
  it('parses VRAM budgets', () => {
    expect(T.parseBytes('8GiB')).toBe(8 * 1024 ** 3);
    expect(T.parseBytes('8G')).toBe(8 * 1024 ** 3);
    expect(T.parseBytes('7500MB')).toBe(7.5e9);
    expect(T.parseBytes('1024')).toBe(1024);
    expect(() => T.parseBytes('lots')).toThrow(RangeError);
  });
});

describe(`CUDA ops vs CPU${skipNote}`, () => {
  for (const c of cudaChecks()) {
    it.skipIf(!gpu)(c.name, () => {
      const r = c.run();
      expect(r.err, `${r.name}: rel-L2 ${r.err} (limit ${r.limit})`).toBeLessThanOrEqual(r.limit);
    });
  }
});

describe(`CUDA memory, budget and streams${skipNote}`, () => {
  it.skipIf(!gpu)('tracks allocations in memoryStats and the allocator', () => {
    const before = T.memoryStats('cuda').currentBytes;
    const t = T.zeros([1024, 1024], { device: 'cuda', dtype: 'bf16' });
    expect(T.memoryStats('cuda').currentBytes - before).toBe(2 * 1024 * 1024);
    expect(T.cudaAllocatorStats().allocatedBytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    t.dispose();
    expect(T.memoryStats('cuda').currentBytes).toBe(before);
  });
  it.skipIf(!gpu)('enforces a hard VRAM budget with a typed error naming it', () => {
    T.cudaEmptyCache();
    const held = T.cudaAllocatorStats().reservedBytes;
    T.setVramBudget(held + 64 * 1024 * 1024);
    try {
      const ok = T.zeros([16, 1024, 1024], { device: 'cuda', dtype: 'f32' });
      let err: unknown;
      try {
        T.zeros([32, 1024, 1024], { device: 'cuda', dtype: 'f32' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(T.OutOfMemoryError);
      expect((err as Error).message).toMatch(/budget of/);
      ok.dispose();
    } finally {
      T.setVramBudget(null);
    }
  });
  it.skipIf(!gpu)('raises typed errors: out-of-range index (RangeError), as the CPU backend', () => {
    const x = T.zeros([4, 3], { device: 'cuda' });
    const bad = T.tensor([0, 9], [2], { dtype: 'i64', device: 'cuda' });
    expect(() => T.indexSelect(x, 0, bad)).toThrow(RangeError);
    x.dispose();
    bad.dispose();
  });
  it.skipIf(!gpu)('copies through pinned buffers on a stream, ordered with events', () => {
    const n = 1 << 20;
    const pin = T.allocPinned(n * 4);
    const host = new Float32Array(pin);
    for (let i = 0; i < n; i++) host[i] = i * 0.5;
    const s = T.CudaStream.create();
    const dst = T.zeros([n], { device: 'cuda' });
    T.copyToDeviceAsync(dst, host, s);
    const done = T.CudaEvent.create().record(s);
    done.synchronize();
    expect(done.query()).toBe(true);
    const doubled = T.mul(dst, 2);
    const back = new Float32Array(T.allocPinned(n * 4));
    T.cudaSynchronize();
    T.copyToHostAsync(back, doubled, s);
    s.synchronize();
    expect(back[12345]).toBe(12345);
    expect(back[n - 1]).toBe(n - 1);
    s.dispose();
    done.dispose();
    dst.dispose();
    doubled.dispose();
  });
});

describe(`CUDA dequantize8 (8-bit streamed weights) bit-exact vs the CPU backend${skipNote}`, () => {
  let seed = 11;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const randn = (n: number) => Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()) * 0.05);
  /** Raw bits of a float tensor's values (NaN as one pattern: the CPU cannot keep NaN payloads). */
  const bits = (t: T.Tensor): number[] => {
    const h = T.toDevice(t, 'cpu');
    const raw = h.toHost();
    const f = h.toFloat32Array();
    h.dispose();
    const u = raw instanceof Float32Array ? new Uint32Array(raw.buffer, raw.byteOffset, raw.length) : (raw as Uint16Array);
    return Array.from(u, (b, i) => (Number.isNaN(f[i]) ? -1 : b));
  };
  /** Dequantize the same codes/scales on both backends into `dtype` views at element offset `dstOff` of a buffer. */
  const both = (codes: Uint8Array, scales: Float32Array, rows: number, cols: number, format: T.Weight8Format, dtype: T.DType, codesOff = 0, dstOff = 0) =>
    (['cuda', 'cpu'] as const).map((device) =>
      T.tidy(() => {
        const cbuf = T.tensor(Uint8Array.from([...new Array(codesOff).fill(0), ...codes]), [codesOff + rows * cols], { dtype: 'u8', device });
        const c = T.reshape(T.slice(cbuf, 0, codesOff, codesOff + rows * cols), [rows, cols]);
        const dst = T.full([dstOff + rows * cols], 3, { dtype, device });
        T.dequantize8Into(T.reshape(T.slice(dst, 0, dstOff, dstOff + rows * cols), [rows, cols]), c, T.tensor(scales, [rows], { device }), format);
        return bits(dst);
      }),
    );
  /** Index of the first differing element (-1: identical), so the vitest shim on the device can check it with toBe. */
  const mismatch = (g: number[], c: number[]) => (g.length !== c.length ? -2 : g.findIndex((x, i) => x !== c[i]));
  const quantized = (rows: number, cols: number, format: T.Weight8Format) => {
    const codes = new Uint8Array(rows * cols), scales = new Float32Array(rows);
    T.quantize8Host(randn(rows * cols), rows, cols, format, codes, scales);
    return { codes, scales };
  };

  for (const format of ['int8', 'fp8'] as const)
    for (const dtype of ['bf16', 'f16', 'f32'] as const) {
      it.skipIf(!gpu)(`${format} -> ${dtype}: vector path (rows of 3072 and of 70 columns: chunks across rows)`, () => {
        for (const [rows, cols] of [[64, 3072], [33, 70], [5, 16]]) {
          const { codes, scales } = quantized(rows, cols, format);
          const [g, c] = both(codes, scales, rows, cols, format, dtype);
          const at = mismatch(g, c);
          expect(at, `(${rows}, ${cols}) at ${at}: cuda ${g[at]} cpu ${c[at]}`).toBe(-1);
        }
      });
      it.skipIf(!gpu)(`${format} -> ${dtype}: unaligned codes and output (scalar path), every one of the 256 codes`, () => {
        // all 256 codes (NaN, -0 and subnormals of fp8, -128 of int8) with scales of different magnitudes
        const rows = 16, cols = 48;
        const codes = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
        const scales = Float32Array.from({ length: rows }, (_, r) => 2 ** (r - 8) * (1 + r / 17));
        for (const [co, dofs] of [[0, 0], [3, 0], [0, 1], [5, 3]]) {
          const [g, c] = both(codes, scales, rows, cols, format, dtype, co, dofs);
          const at = mismatch(g, c);
          expect(at, `offsets ${co}/${dofs} at ${at}: cuda ${g[at]} cpu ${c[at]}`).toBe(-1);
        }
      });
    }

  it.skipIf(!gpu)("the addon's threaded host quantizer (what the streamers use here) equals the TypeScript definition, views at offsets", () => {
    const rows = 300, cols = 1024; // > 1M values: several threads
    const f32 = randn(rows * cols + 3).subarray(3);
    const bf = Uint16Array.from(new Uint32Array(f32.slice().buffer), (b) => b >>> 16);
    for (const format of ['int8', 'fp8'] as const)
      for (const src of [f32, bf]) {
        const codes = new Uint8Array(rows * cols + 5).subarray(5), scales = new Float32Array(rows + 1).subarray(1);
        expect(T.quantize8HostNative(src, rows, cols, format, codes, scales)).toBe(true);
        const wantCodes = new Uint8Array(rows * cols), wantScales = new Float32Array(rows);
        if (src instanceof Float32Array) T.quantize8Host(src, rows, cols, format, wantCodes, wantScales);
        else T.quantize8HostBf16(src, rows, cols, format, wantCodes, wantScales);
        expect(mismatch(Array.from(codes), Array.from(wantCodes)), `${format} ${src.constructor.name} codes`).toBe(-1);
        expect(mismatch(Array.from(scales), Array.from(wantScales)), `${format} ${src.constructor.name} scales`).toBe(-1);
      }
    const bad = f32.slice();
    bad[7 * cols + 1] = NaN;
    expect(() => T.quantize8HostNative(bad, rows, cols, 'int8', new Uint8Array(rows * cols), new Float32Array(rows))).toThrow(/row 7 /);
  });

  it.skipIf(!gpu)('WeightStreamer with 8-bit weights on CUDA (pinned parts, copy stream, dequantize) equals the CPU streamer bit for bit', () => {
    const groups: T.StreamGroup[] = [0, 1, 2].map((g) => ({
      name: `b${g}`,
      params: [{ key: `b${g}.w`, shape: [96 + 32 * g, 64] }, { key: `b${g}.bias`, shape: [96 + 32 * g] }, { key: `b${g}.w2`, shape: [7, 40] }],
    }));
    const src = new Map<string, T.Tensor>();
    for (const g of groups) for (const p of g.params) src.set(p.key, T.tensor(randn(p.shape.reduce((a, b) => a * b, 1)), p.shape));
    const read = (k: string) => T.reshape(src.get(k)!, src.get(k)!.shape);
    for (const format of ['int8', 'fp8'] as const) {
      const cpu = T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cpu', slots: 2, weights8bit: format });
      const dev = T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cuda', slots: 2, weights8bit: format });
      for (let pass = 0; pass < 2; pass++)
        for (const g of groups) {
          const a = cpu.acquire(g.name), b = dev.acquire(g.name);
          for (const p of g.params) {
            const c = bits(a.get(p.key)!), d = bits(b.get(p.key)!);
            const at = mismatch(d, c);
            expect(at, `${format} ${p.key} pass ${pass} at ${at}`).toBe(-1);
          }
          cpu.release(g.name);
          dev.release(g.name);
        }
      cpu.dispose();
      dev.dispose();
    }
  });
});
