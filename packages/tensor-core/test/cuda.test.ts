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
