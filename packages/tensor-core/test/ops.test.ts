import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import { close, rand } from './helpers.js';

const arr = (t: T.Tensor) => t.toArray();

describe('creation', () => {
  it('zeros / ones / full / arange', () => {
    expect(arr(T.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
    expect(arr(T.ones([3], { dtype: 'bf16' }))).toEqual([1, 1, 1]);
    expect(arr(T.full([2], 7, { dtype: 'i64' }))).toEqual([7, 7]);
    expect(arr(T.arange(5))).toEqual([0, 1, 2, 3, 4]);
    expect(arr(T.arange(1, 2, 0.25))).toEqual([1, 1.25, 1.5, 1.75]);
    expect(() => T.tensor([1, 2, 3], [2, 2])).toThrow(T.ShapeError);
  });
});

describe('elementwise', () => {
  it('broadcasts like numpy', () => {
    const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3, 1]);
    const b = T.tensor([10, 20], [1, 2]);
    const c = T.add(a, b);
    expect(c.shape).toEqual([2, 3, 2]);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) expected.push(i * 3 + j + 1 + (k + 1) * 10);
    expect(arr(c)).toEqual(expected);
    expect(() => T.add(T.zeros([2, 3]), T.zeros([4]))).toThrow(/cannot be broadcast/);
    expect(() => T.add(T.zeros([2]), T.zeros([2], { dtype: 'bf16' }))).toThrow(T.DTypeError);
  });
  it('scalar forms and binary ops', () => {
    const x = T.tensor([1, -2, 4], [3]);
    expect(arr(T.sub(x, 1))).toEqual([0, -3, 3]);
    expect(arr(T.div(x, 2))).toEqual([0.5, -1, 2]);
    expect(arr(T.maximum(x, 0))).toEqual([1, 0, 4]);
    expect(arr(T.pow(x, 2))).toEqual([1, 4, 16]);
    expect(arr(T.mul(x, x))).toEqual([1, 4, 16]);
    expect(arr(T.minimum(x, T.tensor([0, 0, 5], [3])))).toEqual([0, -2, 4]);
    expect(arr(T.where(T.gt(x, 0), x, T.zerosLike(x)))).toEqual([1, 0, 4]);
  });
  it('unary functions match their closed forms', () => {
    const v = [-3, -1, -0.5, 0, 0.5, 1, 3];
    const x = T.tensor(v, [v.length]);
    close(arr(T.silu(x)), v.map((a) => a / (1 + Math.exp(-a))));
    close(arr(T.sigmoid(x)), v.map((a) => 1 / (1 + Math.exp(-a))));
    close(arr(T.quickGelu(x)), v.map((a) => a / (1 + Math.exp(-1.702 * a))));
    close(arr(T.gelu(x, 'tanh')), v.map((a) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)))));
    // exact GELU: Phi(1) = 0.8413447460685429, Phi(3) = 0.9986501019683699
    close(arr(T.gelu(T.tensor([1, 3, -1], [3]))), [0.8413447460685429, 3 * 0.9986501019683699, -(1 - 0.8413447460685429)], 1e-6);
    close(arr(T.exp(x)), v.map(Math.exp));
    close(arr(T.rsqrt(T.tensor([4, 0.25], [2]))), [0.5, 2]);
    close(arr(T.tanh(x)), v.map(Math.tanh));
    expect(() => T.exp(T.zeros([1], { dtype: 'i32' }))).toThrow(T.DTypeError);
  });
});

describe('reductions and norms', () => {
  const x = T.tensor([1, 5, 3, 2, 8, 0], [2, 3]);
  it('sum / mean / max / argmax / variance along an axis', () => {
    expect(arr(T.sum(x, 0))).toEqual([3, 13, 3]);
    expect(arr(T.sum(x, 1, true))).toEqual([9, 10]);
    expect(T.sum(x, 1, true).shape).toEqual([2, 1]);
    expect(arr(T.mean(x, -1))).toEqual([3, 10 / 3].map((v) => Math.fround(v)));
    expect(arr(T.max(x, 1))).toEqual([5, 8]);
    expect(arr(T.argmax(x, 1))).toEqual([1, 1]);
    expect(T.argmax(x, 1).dtype).toBe('i64');
    close(arr(T.variance(x, 1)), [4, 52 / 3]);
    close(arr(T.variance(x, 1, { correction: 0 })), [8 / 3, 104 / 9]);
  });
  it('softmax is shift invariant and sums to one', () => {
    const a = rand([4, 7], 3, 5);
    const s = T.softmax(a);
    close(arr(T.sum(s, -1)), [1, 1, 1, 1]);
    close(arr(T.softmax(T.add(a, 100))), arr(s));
    const s0 = T.softmax(a, 0);
    close(arr(T.sum(s0, 0)), new Array(7).fill(1));
  });
  it('layer norm, rms norm and group norm', () => {
    const a = rand([3, 16], 5, 3);
    const ln = T.layerNorm(a, null, null, 1e-6);
    close(arr(T.mean(ln, -1)), [0, 0, 0], 1e-5);
    close(arr(T.variance(ln, -1, { correction: 0 })), [1, 1, 1], 1e-4);
    const w = rand([16], 6), b = rand([16], 7);
    close(arr(T.layerNorm(a, w, b, 1e-6)), arr(T.add(T.mul(ln, w), b)), 1e-5);
    const rms = T.rmsNorm(a, w, 1e-6);
    const va = arr(a), vw = arr(w);
    const exp: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row = va.slice(r * 16, r * 16 + 16);
      const ms = row.reduce((s, v) => s + v * v, 0) / 16;
      row.forEach((v, j) => exp.push((v / Math.sqrt(ms + 1e-6)) * vw[j]));
    }
    close(arr(rms), exp, 1e-5);
    // group norm with 2 groups of 2 channels = layer norm over each group's flattened values
    const g = rand([2, 4, 3, 2], 8);
    const gn = T.groupNorm(g, 2, null, null, 1e-5);
    const asGroups = T.layerNorm(T.reshape(g, [2, 2, 12]), null, null, 1e-5);
    close(arr(gn), arr(asGroups), 1e-5);
    expect(() => T.groupNorm(g, 3, null, null)).toThrow(/groups/);
  });
});

describe('linear algebra', () => {
  function naiveMatmul(a: number[], b: number[], m: number, k: number, n: number): number[] {
    const o: number[] = [];
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * n + j];
      o.push(s);
    }
    return o;
  }
  it('matmul matches the triple loop, with batch broadcast and transB', () => {
    const a = rand([2, 3, 5, 4], 1), b = rand([4, 6], 2);
    const c = T.matmul(a, b);
    expect(c.shape).toEqual([2, 3, 5, 6]);
    const va = arr(a), vb = arr(b), vc = arr(c);
    for (let p = 0; p < 6; p++) close(vc.slice(p * 30, p * 30 + 30), naiveMatmul(va.slice(p * 20, p * 20 + 20), vb, 5, 4, 6));
    close(arr(T.matmul(a, T.transpose(b, 0, 1), { transB: true })), vc);
    expect(() => T.matmul(a, rand([5, 6]))).toThrow(/inner dims/);
  });
  it('linear = x W^T + b', () => {
    const x = rand([2, 3, 4], 4), w = rand([5, 4], 5), b = rand([5], 6);
    close(arr(T.linear(x, w, b)), arr(T.add(T.matmul(x, T.transpose(w, 0, 1)), b)));
    expect(() => T.linear(x, rand([5, 3]))).toThrow(/in = 3/);
  });
  it('attention equals softmax(QK^T * scale) V, with masks', () => {
    const q = rand([1, 2, 3, 4], 1), k = rand([1, 2, 5, 4], 2), v = rand([1, 2, 5, 4], 3);
    const scores = T.mul(T.matmul(q, k, { transB: true }), 0.5);
    close(arr(T.scaledDotProductAttention(q, k, v)), arr(T.matmul(T.softmax(scores), v)));
    // key-length mask: keys >= 3 hidden == attention over the first 3 keys only
    const mask = T.tensor([1, 1, 1, 0, 0], [1, 1, 1, 5], { dtype: 'bool' });
    close(arr(T.scaledDotProductAttention(q, k, v, { mask })), arr(T.scaledDotProductAttention(q, T.slice(k, 2, 0, 3), T.slice(v, 2, 0, 3))));
    // causal with Lq == Lk: row i sees keys 0..i
    const qq = rand([1, 1, 4, 4], 9);
    const causal = arr(T.scaledDotProductAttention(qq, qq, qq, { causal: true }));
    close(causal.slice(0, 4), arr(T.slice(qq, 2, 0, 1)));
    const row2 = arr(T.scaledDotProductAttention(T.slice(qq, 2, 2, 3), T.slice(qq, 2, 0, 3), T.slice(qq, 2, 0, 3)));
    close(causal.slice(8, 12), row2);
    // all keys masked: zeros, not NaN
    const none = T.zeros([1, 1, 1, 5], { dtype: 'bool' });
    expect(arr(T.scaledDotProductAttention(q, k, v, { mask: none })).every((x) => x === 0)).toBe(true);
  });
  it('attention on (B, L, H, D) operands equals the (B, H, L, D) op, transposed', () => {
    const q = rand([2, 3, 2, 4], 11), k = rand([2, 5, 2, 4], 12), v = rand([2, 5, 2, 4], 13);
    const mask = T.tensor([1, 1, 1, 0, 0, 1, 1, 1, 1, 0], [2, 1, 1, 5], { dtype: 'bool' });
    const ref = T.transpose(T.scaledDotProductAttention(T.transpose(q, 1, 2), T.transpose(k, 1, 2), T.transpose(v, 1, 2), { mask }), 1, 2);
    const o = T.scaledDotProductAttentionBLHD(q, k, v, { mask });
    expect(o.shape).toEqual([2, 3, 2, 4]);
    close(arr(o), arr(ref), 0);
    expect(() => T.scaledDotProductAttentionBLHD(q, rand([2, 5, 3, 4]), v)).toThrow(/does not match/);
  });
});

describe('conv3d and upsampling', () => {
  it('matches a direct seven-loop convolution with stride and padding', () => {
    const x = rand([1, 2, 4, 5, 6], 11), w = rand([3, 2, 3, 3, 2], 12), b = rand([3], 13);
    const y = T.conv3d(x, w, b, { stride: [1, 2, 2], padding: [1, 1, 0] });
    const [OT, OH, OW] = y.shape.slice(2);
    const vx = arr(x), vw = arr(w), vb = arr(b);
    const exp: number[] = [];
    for (let co = 0; co < 3; co++) for (let ot = 0; ot < OT; ot++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      let s = vb[co];
      for (let ci = 0; ci < 2; ci++) for (let kt = 0; kt < 3; kt++) for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 2; kw++) {
        const it = ot + kt - 1, ih = oh * 2 + kh - 1, iw = ow * 2 + kw;
        if (it < 0 || it >= 4 || ih < 0 || ih >= 5 || iw < 0 || iw >= 6) continue;
        s += vw[(((co * 2 + ci) * 3 + kt) * 3 + kh) * 2 + kw] * vx[((ci * 4 + it) * 5 + ih) * 6 + iw];
      }
      exp.push(s);
    }
    expect(y.shape).toEqual([1, 3, 4, 3, 3]);
    close(arr(y), exp);
  });
  it('conv3d with kernel = stride equals patchify + linear', () => {
    const x = rand([2, 3, 2, 4, 6], 21), w = rand([5, 3, 1, 2, 2], 22), b = rand([5], 23);
    const y = T.conv3d(x, w, b, { stride: [1, 2, 2] });
    const tokens = T.linear(T.patchify(x, [1, 2, 2]), T.reshape(w, [5, 12]), b); // (B, L, 5)
    close(arr(T.reshape(T.permute(tokens, [0, 2, 1]), y.shape)), arr(y));
    const back = T.unpatchify(T.patchify(x, [1, 2, 2]), [2, 2, 3], [1, 2, 2]);
    expect(arr(back)).toEqual(arr(x));
  });
  it('conv2d and nearest upsampling', () => {
    const x = T.reshape(T.arange(4), [1, 1, 2, 2]);
    expect(arr(T.upsampleNearest(x, [2, 2]))).toEqual([0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
    const id = T.tensor([0, 0, 0, 0, 1, 0, 0, 0, 0], [1, 1, 3, 3]);
    expect(arr(T.conv2d(x, id, null, { padding: 1 }))).toEqual([0, 1, 2, 3]);
  });
});

describe('shape ops', () => {
  const x = T.reshape(T.arange(24), [2, 3, 4]);
  it('permute / transpose / slice / cat / split / chunk', () => {
    const p = T.permute(x, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(arr(p).slice(0, 6)).toEqual([0, 4, 8, 12, 16, 20]);
    expect(arr(T.slice(x, 2, 1, 4, 2))).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]);
    expect(arr(T.slice(x, 0, 1))).toEqual(arr(x).slice(12));
    const [a, b] = T.split(x, [1, 3], 2);
    expect(arr(T.cat([a, b], 2))).toEqual(arr(x));
    expect(T.chunk(x, 2, 1).map((t) => t.shape[1])).toEqual([2, 1]);
    expect(arr(T.stack([T.arange(2), T.arange(2)], 1))).toEqual([0, 0, 1, 1]);
  });
  it('indexSelect / gather / embedding / pad', () => {
    const idx = T.tensor([2, 0], [2], { dtype: 'i64' });
    expect(arr(T.indexSelect(x, 1, idx)).slice(0, 8)).toEqual([8, 9, 10, 11, 0, 1, 2, 3]);
    const g = T.gather(T.tensor([1, 2, 3, 4], [2, 2]), 1, T.tensor([1, 1, 0, 1], [2, 2], { dtype: 'i64' }));
    expect(arr(g)).toEqual([2, 2, 3, 4]);
    const table = T.reshape(T.arange(6), [3, 2]);
    expect(arr(T.embedding(T.tensor([2, 2, 0], [1, 3], { dtype: 'i32' }), table))).toEqual([4, 5, 4, 5, 0, 1]);
    const v = T.tensor([1, 2, 3], [1, 3]);
    expect(arr(T.pad(v, [[1, 2]], 'replicate'))).toEqual([1, 1, 2, 3, 3, 3]);
    expect(arr(T.pad(v, [[0, 1], [1, 0]], 'constant', -1))).toEqual([-1, 1, 2, 3, -1, -1, -1, -1]);
    expect(() => T.indexSelect(x, 0, T.tensor([5], [1], { dtype: 'i64' }))).toThrow(/out of range/);
  });
  it('rope in both layouts matches the complex-rotation formula', () => {
    const x = rand([1, 3, 2, 4], 31); // (B, L, H, D)
    const ang = rand([3, 1, 2], 32, 3); // one angle per (position, pair)
    const a = arr(ang);
    const cosI = T.tensor(a.flatMap((t) => [Math.cos(t), Math.cos(t)]), [3, 1, 4]);
    const sinI = T.tensor(a.flatMap((t) => [Math.sin(t), Math.sin(t)]), [3, 1, 4]);
    const out = arr(T.rope(x, cosI, sinI, 'interleaved'));
    const vx = arr(x);
    for (let l = 0; l < 3; l++) for (let h = 0; h < 2; h++) for (let p = 0; p < 2; p++) {
      const i = ((l * 2 + h) * 4) + 2 * p, t = a[l * 2 + p];
      expect(out[i]).toBeCloseTo(vx[i] * Math.cos(t) - vx[i + 1] * Math.sin(t), 5);
      expect(out[i + 1]).toBeCloseTo(vx[i] * Math.sin(t) + vx[i + 1] * Math.cos(t), 5);
    }
    const cosH = T.tensor(Array.from({ length: 3 }, (_, l) => [a[l * 2], a[l * 2 + 1], a[l * 2], a[l * 2 + 1]].map(Math.cos)).flat(), [3, 1, 4]);
    const sinH = T.tensor(Array.from({ length: 3 }, (_, l) => [a[l * 2], a[l * 2 + 1], a[l * 2], a[l * 2 + 1]].map(Math.sin)).flat(), [3, 1, 4]);
    const outH = arr(T.rope(x, cosH, sinH, 'half'));
    for (let l = 0; l < 3; l++) for (let h = 0; h < 2; h++) for (let p = 0; p < 2; p++) {
      const i = (l * 2 + h) * 4 + p, t = a[l * 2 + p];
      expect(outH[i]).toBeCloseTo(vx[i] * Math.cos(t) - vx[i + 2] * Math.sin(t), 5);
      expect(outH[i + 2]).toBeCloseTo(vx[i] * Math.sin(t) + vx[i + 2] * Math.cos(t), 5);
    }
  });
});

describe('lifetimes and memory stats', () => {
  it('views share storage; dispose and tidy free it; use after dispose throws', () => {
    const before = T.memoryStats('cpu').currentBytes;
    const a = T.zeros([256]);
    expect(T.memoryStats('cpu').currentBytes - before).toBe(1024);
    const v = T.reshape(a, [16, 16]);
    const s = T.slice(v, 0, 4, 8);
    expect(T.memoryStats('cpu').currentBytes - before).toBe(1024); // views cost nothing
    a.dispose();
    expect(T.memoryStats('cpu').currentBytes - before).toBe(1024); // still referenced by views
    v.dispose();
    s.dispose();
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
    expect(() => a.toArray()).toThrow(T.DisposedTensorError);
    const kept = T.tidy(() => {
      const t1 = T.ones([100]);
      const t2 = T.add(t1, 1);
      return { out: T.mul(t2, 2) };
    });
    expect(T.memoryStats('cpu').currentBytes - before).toBe(400);
    expect(kept.out.toArray()[0]).toBe(4);
    kept.out.dispose();
    T.resetPeakMemory('cpu');
    T.tidy(() => {
      T.zeros([1000]);
    });
    expect(T.memoryStats('cpu').peakBytes - before).toBe(4000);
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
  });
  it('tidy disposes on throw and refuses async functions', () => {
    const before = T.memoryStats('cpu').currentBytes;
    expect(() => T.tidy(() => { T.zeros([10]); throw new Error('boom'); })).toThrow('boom');
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
    expect(() => T.tidy(async () => 1)).toThrow(/synchronous/);
  });
  it('cuda reports itself unavailable with a reason when there is no GPU backend', () => {
    if (T.isDeviceAvailable('cuda')) return; // a GPU machine: the CUDA tests cover it
    expect(() => T.zeros([1], { device: 'cuda' })).toThrow(T.DeviceError);
  });
});
