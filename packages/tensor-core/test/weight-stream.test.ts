import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';

// Three groups of different sizes; each group's parameters hold distinct values so a wrong slot/offset shows.
const groups: T.StreamGroup[] = [
  { name: 'g0', params: [{ key: 'g0.a', shape: [2, 3] }, { key: 'g0.b', shape: [3] }] },
  { name: 'g1', params: [{ key: 'g1.a', shape: [4] }] },
  { name: 'g2', params: [{ key: 'g2.a', shape: [2, 2] }, { key: 'g2.b', shape: [1] }, { key: 'g2.c', shape: [2] }] },
];
const values = new Map<string, number[]>();
let v = 1;
for (const g of groups) for (const p of g.params) values.set(p.key, Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => v++));
const source = new Map([...values].map(([k, xs]) => [k, T.tensor(xs, groups.flatMap((g) => g.params).find((p) => p.key === k)!.shape)]));
const read = (k: string) => T.reshape(source.get(k)!, source.get(k)!.shape);

describe('WeightStreamer', () => {
  it('hands out every group with its exact values, pass after pass, for any slot count', () => {
    for (const slots of [1, 2, 3, 5]) {
      const s = T.WeightStreamer.create(groups, read, { dtype: 'f32', device: 'cpu', slots });
      expect(s.slots).toBe(Math.min(slots, 3));
      for (let pass = 0; pass < 3; pass++)
        for (const g of groups) {
          const views = s.acquire(g.name);
          for (const p of g.params) {
            expect(views.get(p.key)!.shape).toEqual(p.shape);
            expect(views.get(p.key)!.toArray()).toEqual(values.get(p.key));
          }
          s.release(g.name);
        }
      // one slot per group: each group copied once; fewer: every pass copies again the groups not still in
      // their slot from the previous pass (at most all 3, plus the next pass's first groups, prefetched)
      if (slots >= 3) expect(s.loads).toBe(3);
      else {
        expect(s.loads).toBeGreaterThan(3 + 2 * (3 - slots));
        expect(s.loads).toBeLessThanOrEqual(3 * 3 + slots);
      }
      s.dispose();
    }
    // the caller's tensors survive (read returned views)
    expect(source.get('g0.a')!.toArray()).toEqual(values.get('g0.a'));
  });

  it('keeps only the slots as tensors: host buffers hold the groups, sized as the largest group', () => {
    const before = T.memoryStats('cpu').currentBytes;
    const s = T.WeightStreamer.create(groups, read, { dtype: 'f32', device: 'cpu', slots: 2 });
    expect(T.memoryStats('cpu').currentBytes - before).toBe(2 * 9 * 4);
    expect(s.deviceBytes).toBe(2 * 9 * 4);
    expect(s.hostBytes).toBe((9 + 4 + 7) * 4);
    expect(T.streamGroupBytes(groups[2], 'bf16')).toBe(7 * 2);
    s.dispose();
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
  });

  it("hostCopy 'source' reads each group again on every copy into per-slot staging buffers, same values", () => {
    let reads = 0;
    const counting = (k: string) => (reads++, read(k));
    const s = T.WeightStreamer.create(groups, counting, { dtype: 'f32', device: 'cpu', slots: 2, hostCopy: 'source' });
    expect(reads).toBe(0); // nothing read up front
    expect(s.hostBytes).toBe(2 * 9 * 4); // two staging buffers the size of the largest group
    for (let pass = 0; pass < 3; pass++)
      for (const g of groups) {
        const views = s.acquire(g.name);
        for (const p of g.params) expect(views.get(p.key)!.toArray()).toEqual(values.get(p.key));
        s.release(g.name);
      }
    // every copy read its group's parameters again
    const paramsOf = new Map(groups.map((g) => [g.name, g.params.length]));
    expect(reads).toBeGreaterThanOrEqual(3 * [...paramsOf.values()].reduce((a, b) => a + b, 0) - 3);
    expect(s.loads).toBeGreaterThan(3);
    s.dispose();
    expect(() => T.WeightStreamer.create(groups, read, { dtype: 'f32', device: 'cpu', hostCopy: 'disk' as 'source' })).toThrow(/hostCopy/);
  });

  it('readDirect fills parameters straight from stored bytes where it can, read covers the rest: same weights', () => {
    // a matrix wide enough to quantize, a bias, a second group
    const rawGroups: T.StreamGroup[] = [
      { name: 'r0', params: [{ key: 'r0.w', shape: [4, 32] }, { key: 'r0.b', shape: [4] }] },
      { name: 'r1', params: [{ key: 'r1.w', shape: [3, 16] }] },
    ];
    let x = 0.37;
    const src = new Map(rawGroups.flatMap((g) => g.params).map((p) => [p.key, T.cast(T.tensor(Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (x = (x * 7.13) % 1.9) - 0.95), p.shape), 'bf16')]));
    const readFrom = (calls: string[]) => (k: string) => (calls.push(k), T.reshape(src.get(k)!, src.get(k)!.shape));
    // raw bytes for every key but r1.w (as a checkpoint storing another dtype would answer)
    const raw = (k: string, dst: Uint8Array) => {
      if (k === 'r1.w') return false;
      const bits = src.get(k)!.toHost() as Uint16Array;
      expect(dst.byteLength).toBe(bits.byteLength);
      dst.set(new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
      return true;
    };
    for (const weights8bit of [undefined, 'int8', 'fp8'] as const)
      for (const hostCopy of ['packed', 'source'] as const) {
        const viaRead: string[] = [], viaRaw: string[] = [];
        const opts = { dtype: 'bf16' as const, device: 'cpu' as const, slots: 1, hostCopy, ...(weights8bit ? { weights8bit } : {}) };
        const plain = T.WeightStreamer.create(rawGroups, readFrom(viaRead), opts);
        const fast = T.WeightStreamer.create(rawGroups, readFrom(viaRaw), { ...opts, readDirect: raw });
        for (const g of rawGroups) {
          const want = plain.acquire(g.name), got = fast.acquire(g.name);
          for (const p of g.params) expect(got.get(p.key)!.toArray(), `${p.key} ${weights8bit ?? 'bf16'} ${hostCopy}`).toEqual(want.get(p.key)!.toArray());
          plain.release(g.name);
          fast.release(g.name);
        }
        expect(new Set(viaRaw)).toEqual(new Set(['r1.w'])); // only the key raw declined went through read
        expect(viaRead.length).toBeGreaterThanOrEqual(3);
        plain.dispose();
        fast.dispose();
      }
  });

  it('casts to the storage dtype', () => {
    const s = T.WeightStreamer.create(groups, read, { dtype: 'bf16', device: 'cpu', slots: 1 });
    const a = s.acquire('g1').get('g1.a')!;
    expect(a.dtype).toBe('bf16');
    expect(T.cast(a, 'f32').toArray()).toEqual(values.get('g1.a'));
    s.dispose();
  });

  it('refuses bad slots, duplicate names, wrong sizes and out-of-order use', () => {
    expect(() => T.WeightStreamer.create(groups, read, { dtype: 'f32', device: 'cpu', slots: 0 })).toThrow(T.WeightStreamError);
    expect(() => T.WeightStreamer.create([groups[0], groups[0]], read, { dtype: 'f32', device: 'cpu' })).toThrow(/unique/);
    expect(() => T.WeightStreamer.create([{ name: 'x', params: [{ key: 'g1.a', shape: [5] }] }], read, { dtype: 'f32', device: 'cpu' })).toThrow(/expected shape/);
    const s = T.WeightStreamer.create(groups, read, { dtype: 'f32', device: 'cpu', slots: 1 });
    expect(() => s.acquire('nope')).toThrow(T.WeightStreamError);
    s.acquire('g0');
    expect(() => s.acquire('g1')).toThrow(/release groups in order/);
    s.releaseAll();
    expect(s.acquire('g1').get('g1.a')!.toArray()).toEqual(values.get('g1.a'));
    s.dispose();
  });
});
