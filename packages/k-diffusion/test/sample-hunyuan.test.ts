import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import {
  latentShape,
  type ModelCallContext,
  randn,
  sampleHunyuan,
  SamplerOptionError,
  SamplerShapeError,
  SamplingCancelledError,
  TorchGenerator,
} from '@framepack/k-diffusion';

interface Cond {
  bias: number;
}
interface Call {
  ctx: ModelCallContext;
  x: Float32Array;
  timestep: number[];
  guidance?: number[];
  bias: number;
}

/** A velocity model v = 0.1 x + bias that records what it was called with. */
function recorder() {
  const calls: Call[] = [];
  const model = (x: T.Tensor, timestep: T.Tensor, cond: Cond, ctx: ModelCallContext) => {
    calls.push({ ctx: { ...ctx, guidance: undefined }, x: x.toFloat32Array(), timestep: timestep.toArray(), guidance: ctx.guidance?.toArray(), bias: cond.bias });
    return T.tidy(() => T.add(T.mul(x, 0.1), cond.bias));
  };
  return { calls, model };
}

const small = { width: 16, height: 16, frames: 1 } as const; // latent (1, 16, 1, 2, 2)

describe('sampleHunyuan', () => {
  it('draws (B, 16, (frames+3)//4, H/8, W/8) noise from the generator and shares its stream', async () => {
    expect(latentShape({ batchSize: 2, frames: 33, height: 640, width: 608 })).toEqual([2, 16, 9, 80, 76]);
    const { calls, model } = recorder();
    const gen = new TorchGenerator(1234);
    const opts = { model, positive: { bias: 0 }, ...small, frames: 5, steps: 2, dtype: 'f32' as const, generator: gen };
    await sampleHunyuan(opts);
    await sampleHunyuan(opts);
    const ref = new TorchGenerator(1234);
    const first = randn([1, 16, 2, 2, 2], ref).toFloat32Array();
    const second = randn([1, 16, 2, 2, 2], ref).toFloat32Array();
    expect(Array.from(calls[0].x)).toEqual(Array.from(first));
    expect(Array.from(calls[2].x)).toEqual(Array.from(second));
  });

  it('with cfg = 1 makes exactly one (positive) model call per step, with FramePack bf16 timesteps and guidance', async () => {
    const { calls, model } = recorder();
    await sampleHunyuan({ model, positive: { bias: 0.5 }, ...small, steps: 25, shift: 7, cfg: 1, gs: 10, seed: 3 });
    expect(calls.length).toBe(25);
    expect(calls.map((c) => c.ctx.branch)).toEqual(new Array(25).fill('positive'));
    expect(calls.map((c) => c.ctx.step)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(calls.every((c) => c.ctx.totalSteps === 25)).toBe(true);
    // research §2.2: the timesteps the reference feeds the model (sigma*1000 rounded to bf16)
    expect(calls.map((c) => c.timestep[0])).toEqual([
      1000, 996, 988, 980, 972, 964, 956, 948, 936, 924, 912, 900, 884, 864, 848, 824, 796, 768, 732, 688, 636, 572, 488, 378, 226,
    ]);
    expect(calls[0].guidance).toEqual([9984]); // gs 10 -> 10000 -> bf16 9984
    // every x the model sees is rounded to bf16
    for (const c of calls) for (const v of c.x) expect(T.bf16BitsToF32(T.f32ToBf16Bits(v))).toBe(v);
  });

  it('with cfg != 1 runs positive then negative each step, and needs a negative', async () => {
    const { calls, model } = recorder();
    await sampleHunyuan({ model, positive: { bias: 1 }, negative: { bias: -1 }, ...small, steps: 3, cfg: 2, seed: 1, dtype: 'f32' });
    expect(calls.map((c) => `${c.ctx.step}${c.ctx.branch[0]}${c.bias}`)).toEqual(['0p1', '0n-1', '1p1', '1n-1', '2p1', '2n-1']);
    await expect(sampleHunyuan({ model, positive: { bias: 1 }, ...small, steps: 3, cfg: 2, seed: 1 })).rejects.toThrow(SamplerOptionError);
  });

  it('applies CFG, guidance rescale and x0 = x - v*sigma like fm_wrapper', async () => {
    const shape = latentShape(small);
    const n = shape.reduce((a, b) => a * b, 1);
    const noise = T.tensor(Array.from({ length: n }, (_, i) => Math.sin(i)), shape);
    const P = Array.from({ length: n }, (_, i) => Math.cos(i * 0.7) * 2);
    const N = Array.from({ length: n }, (_, i) => Math.sin(i * 0.3) - 0.5);
    const model = (_x: T.Tensor, _t: T.Tensor, c: number[]) => T.tensor(c, shape);
    const cfg = 3, phi = 0.7;
    // one step: the result is the x0 prediction at sigma = 1
    const out = await sampleHunyuan({ model, positive: P, negative: N, ...small, steps: 1, cfg, rs: phi, noise, dtype: 'f32' });
    const fp = P.map(Math.fround), fn = N.map(Math.fround);
    const vcfg = fp.map((p, i) => fn[i] + cfg * (p - fn[i]));
    const std = (a: number[]) => {
      const m = a.reduce((s, v) => s + v, 0) / a.length;
      return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1));
    };
    const ratio = std(fp) / std(vcfg);
    const x = noise.toFloat32Array();
    const want = vcfg.map((v, i) => x[i] - (phi * v * ratio + (1 - phi) * v));
    const got = out.toFloat32Array();
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 5));
  });

  it('cancels between steps with SamplingCancelledError and frees its tensors', async () => {
    const { calls, model } = recorder();
    const before = T.memoryStats('cpu').allocations;
    const ac = new AbortController();
    const run = sampleHunyuan({
      model,
      positive: { bias: 0 },
      ...small,
      steps: 10,
      seed: 5,
      signal: ac.signal,
      callback: (s) => {
        if (s.step === 2) setImmediate(() => ac.abort('user')); // an abort from outside, between steps
      },
    });
    const err = await run.catch((e) => e);
    expect(err).toBeInstanceOf(SamplingCancelledError);
    expect(err.step).toBe(3);
    expect(err.reason).toBe('user');
    expect(calls.length).toBe(3);
    expect(T.memoryStats('cpu').allocations).toBeLessThanOrEqual(before);

    const pre = new AbortController();
    pre.abort();
    const { calls: none, model: m2 } = recorder();
    await expect(sampleHunyuan({ model: m2, positive: { bias: 0 }, ...small, steps: 4, seed: 5, signal: pre.signal })).rejects.toThrow(SamplingCancelledError);
    expect(none.length).toBe(0);
  });

  it('leaves only its result allocated (cfg, rescale, bf16 rounding, concat, img2img)', async () => {
    const shape = latentShape(small);
    const init = T.full(shape, 0.5);
    const concat = T.full([1, 2, ...shape.slice(2)], 1);
    const model = (x: T.Tensor, _t: T.Tensor, c: number) => T.tidy(() => T.mul(T.slice(T.permute(x, [1, 0, 2, 3, 4]), 0, 0, 16), c));
    const fixed = (x: T.Tensor, t: T.Tensor, c: number) => T.tidy(() => T.permute(model(x, t, c), [1, 0, 2, 3, 4]));
    const before = T.memoryStats('cpu').allocations;
    const out = await sampleHunyuan({ model: fixed, positive: 0.3, negative: -0.2, ...small, steps: 5, cfg: 2.5, rs: 0.5, seed: 4, initialLatent: init, strength: 0.8, concatLatent: concat });
    expect(out.shape).toEqual(shape);
    expect(T.memoryStats('cpu').allocations).toBeLessThanOrEqual(before + 1);
  });

  it('reports every step to the callback and returns the last denoised state', async () => {
    const { model } = recorder();
    const seen: number[] = [];
    let last: number[] = [];
    const out = await sampleHunyuan({
      model,
      positive: { bias: 0.25 },
      ...small,
      steps: 4,
      seed: 9,
      callback: (s) => {
        seen.push(s.step);
        expect(s.totalSteps).toBe(4);
        last = s.denoised.toArray();
      },
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(out.toArray()).toEqual(last);
  });

  it('img2img starts from the initial latent noised to the first (strength-scaled) sigma', async () => {
    const shape = latentShape(small);
    const init = T.full(shape, 2);
    const noise = T.zeros(shape);
    const { calls, model } = recorder();
    await sampleHunyuan({ model, positive: { bias: 0 }, ...small, steps: 2, shift: 1, strength: 0.5, initialLatent: init, noise, dtype: 'f32' });
    // shift 1: sigmas 1, 0.5, 0 -> scaled 0.5, 0.25, 0; x = init * (1 - 0.5) + noise * 0.5
    expect(calls[0].x.every((v) => v === 1)).toBe(true);
    expect(calls[0].timestep).toEqual([500]);
  });

  it('passes concat latents after x on the channel dim', async () => {
    const shape = latentShape(small);
    const concat = T.full([1, 4, ...shape.slice(2)], 7);
    const seen: number[][] = [];
    const model = (x: T.Tensor) => {
      seen.push(x.shape as number[]);
      return T.zeros(shape);
    };
    await sampleHunyuan({ model, positive: null, ...small, steps: 1, seed: 1, concatLatent: concat });
    expect(seen[0]).toEqual([1, 20, 1, 2, 2]);
  });

  it('validates its options', async () => {
    const { model } = recorder();
    const base = { model, positive: { bias: 0 }, ...small, seed: 1 };
    await expect(sampleHunyuan({ ...base, width: 100 })).rejects.toThrow(SamplerOptionError);
    await expect(sampleHunyuan({ ...base, steps: 0 })).rejects.toThrow(SamplerOptionError);
    await expect(sampleHunyuan({ ...base, rs: 2 })).rejects.toThrow(SamplerOptionError);
    await expect(sampleHunyuan({ ...base, seed: undefined })).rejects.toThrow(SamplerOptionError);
    await expect(sampleHunyuan({ ...base, noise: T.zeros([1, 16, 1, 2, 3]) })).rejects.toThrow(SamplerShapeError);
    const bad = () => T.zeros([1, 16, 1, 2, 3]);
    await expect(sampleHunyuan({ ...base, model: bad, steps: 2 })).rejects.toThrow(SamplerShapeError);
  });
});
