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
