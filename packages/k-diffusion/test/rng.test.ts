import { describe, expect, it } from 'vitest';
import { randn, RngError, TorchGenerator } from '@framepack/k-diffusion';

// Reference numbers below come from PyTorch (research notes §2.5, measured with torch 2.11 on x86).
describe('TorchGenerator', () => {
  it('draws the mt19937 stream torch seeds with manual_seed', () => {
    const g = new TorchGenerator(31337);
    expect([g.random(), g.random(), g.random(), g.random(), g.random()]).toEqual([3100331191, 3480951327, 4150831638, 1400216829, 1241456317]);
  });

  it('makes float uniforms from the low 24 bits (torch.rand)', () => {
    const g = new TorchGenerator(31337);
    expect([g.uniformF32(), g.uniformF32(), g.uniformF32()]).toEqual([0.7941393256187439, 0.48086732625961304, 0.40884530544281006]);
  });

  it('reproduces torch.randn([1,16,9,80,76]) bit for bit on the AVX2 kernel', () => {
    const t = randn([1, 16, 9, 80, 76], new TorchGenerator(31337));
    expect(t.shape).toEqual([1, 16, 9, 80, 76]);
    expect(t.dtype).toBe('f32');
    const a = t.toFloat32Array();
    const n = a.length;
    expect([a[0], a[1], a[2], a[3]]).toEqual([1.183281660079956, -0.06305880844593048, 0.9908509254455566, -0.5060694217681885]);
    expect([a[n - 2], a[n - 1]]).toEqual([0.08921828120946884, 0.8193882703781128]);
    let s = 0;
    for (const v of a) s += v;
    expect(s).toBe(-1598.3675909910808);
  });

  it('follows the scalar (non-AVX) kernel when asked', () => {
    const a = new TorchGenerator(31337, { kernel: 'scalar' }).fillNormal(new Float32Array(16 * 9 * 80 * 76));
    const n = a.length;
    expect([a[0], a[1], a[2], a[3]]).toEqual([1.183281660079956, -0.06305935233831406, 0.9908508062362671, -0.5060694813728333]);
    expect([a[n - 2], a[n - 1]]).toEqual([0.08921828120946884, 0.8193883299827576]);
  });

  it('continues one stream across draws: multiples of 16 concatenate', () => {
    const g = new TorchGenerator(7);
    const a = randn([2, 16], g).toFloat32Array();
    const b = randn([3, 16], g).toFloat32Array();
    const whole = randn([80], new TorchGenerator(7)).toFloat32Array();
    expect(Array.from(a)).toEqual(Array.from(whole.subarray(0, 32)));
    expect(Array.from(b)).toEqual(Array.from(whole.subarray(32)));
  });

  it('redraws the last 16 uniforms when numel % 16 != 0 (17 values consume 33 draws)', () => {
    const g = new TorchGenerator(5);
    randn([17], g);
    const h = new TorchGenerator(5);
    for (let i = 0; i < 33; i++) h.random();
    expect(g.random()).toBe(h.random());
    // the first 16 values were overwritten only where the tail overlaps: value 0 is the 16-block's value 0
    const first = randn([17], new TorchGenerator(5)).toFloat32Array()[0];
    expect(first).toBe(randn([16], new TorchGenerator(5)).toFloat32Array()[0]);
  });

  it('small draws use double Box-Muller with a cached second value', () => {
    const g = new TorchGenerator(11);
    const one = randn([1], g).item(); // 2 x random64 = 4 draws, caches the sine value
    const two = randn([1], g).item(); // the cached value: no draws
    const pair = Array.from(randn([2], new TorchGenerator(11)).toFloat32Array());
    expect([one, two]).toEqual(pair);
    const h = new TorchGenerator(11);
    for (let i = 0; i < 4; i++) h.random();
    expect(g.random()).toBe(h.random());
    // reseeding drops the cached value
    const r = new TorchGenerator(11);
    randn([1], r);
    r.manualSeed(11);
    expect(randn([1], r).item()).toBe(one);
  });

  it('snapshots and restores its state', () => {
    const g = new TorchGenerator(99);
    randn([3], g); // leaves a cached normal behind
    const s = g.getState();
    const a = Array.from(randn([5, 7], g).toFloat32Array());
    const b = Array.from(randn([5, 7], g.clone().setState(s)).toFloat32Array());
    expect(b).toEqual(a);
    expect(g.initialSeed()).toBe(99n);
  });

  it('seeds with the low 32 bits and wraps negative seeds as torch does', () => {
    expect(new TorchGenerator(2n ** 32n + 5n).random()).toBe(new TorchGenerator(5).random());
    expect(new TorchGenerator(-1).random()).toBe(new TorchGenerator(0xfffffffe).random());
    expect(() => new TorchGenerator(1.5)).toThrow(RngError);
    expect(() => new TorchGenerator(2n ** 64n)).toThrow(RngError);
    expect(() => randn([2, -1], new TorchGenerator(1))).toThrow(RngError);
  });
});
