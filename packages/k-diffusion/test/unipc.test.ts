import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { fluxSigmas, sampleUniPC, SamplerOptionError, SamplerShapeError, solveF32, unipcCoefficients, unipcSteps } from '@framepack/k-diffusion';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

describe('UniPC coefficients', () => {
  // rows of FramePack's per-step table at 25 steps (measured on CUDA with the reference's expressions, research §2.4):
  // [i, ratio, phi1, Bh, rhosP, rhosC]
  const TABLE: [number, number, number, number, number[], number[]][] = [
    [1, 0.9940827488899231, -0.005917251110076904, -0.005934827495366335, [], [0.5]],
    [2, 0.9936095476150513, -0.006390477530658245, -0.006410983856767416, [0.5], [0.08553153276443481, 0.4133971333503723]],
    [3, 0.9930766820907593, -0.006923330016434193, -0.006947407498955727, [1.4282445907592773, -0.9294034242630005], [0.45692816376686096, -0.2568757236003876, 0.2987886667251587]],
    [5, 0.9917897582054138, -0.00821023527532816, -0.008244125172495842, [1.4336243867874146, -0.9349889159202576], [-0.13133293390274048, 0.15196692943572998, 0.4780014753341675]],
    [20, 0.9242424964904785, -0.07575750350952148, -0.07878080010414124, [1.6415525674819946, -1.1544283628463745], [0.2810579836368561, -0.14166706800460815, 0.3477332592010498]],
    [24, 0.596774160861969, -0.403225839138031, -0.516216516494751, [2.0805282592773438, -1.6565157175064087], [0.3775404095649719, -0.24161143600940704, 0.28808364272117615]],
  ];
  const { sigmas } = fluxSigmas({ steps: 25, shift: 7 });
  it.each(TABLE)('step %i matches the reference table', (i, ratio, phi1, Bh, rhosP, rhosC) => {
    const k = Math.min(i, 3);
    const c = unipcCoefficients(Array.from(sigmas.subarray(i - k, i)), sigmas[i], 'bh1');
    expect(c.order).toBe(k);
    expect(c.ratio).toBe(ratio);
    // log/expm1 may differ by an ulp between CUDA's libdevice and the host; the weights are ill-conditioned early on
    expect(rel(c.phi1, phi1)).toBeLessThan(1e-6);
    expect(rel(c.Bh, Bh)).toBeLessThan(1e-6);
    expect(c.rhosP.length).toBe(rhosP.length);
    c.rhosP.forEach((v, j) => expect(Math.abs(v - rhosP[j])).toBeLessThan(1e-4));
    c.rhosC.forEach((v, j) => expect(Math.abs(v - rhosC[j])).toBeLessThan(1e-3));
  });

  it('bh2 uses expm1(hh) as B_h', () => {
    const c1 = unipcCoefficients([1, 0.9], 0.8, 'bh1');
    const c2 = unipcCoefficients([1, 0.9], 0.8, 'bh2');
    expect(c2.Bh).toBe(Math.fround(Math.expm1(c1.Bh)));
    expect(c2.phi1).toBe(c1.phi1);
  });

  it('solves small systems in f32 with pivoting', () => {
    const x = solveF32([[0, 2, 1], [1, 1, 1], [4, 0, 1]], [7, 6, 7]);
    const want = [1, 2, 3];
    x.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    expect(() => solveF32([[1, 2], [2, 4]], [1, 1])).toThrow(SamplerOptionError);
  });
});

describe('UniPC solver', () => {
  it('is exact when the x0 prediction is constant (the flow ODE is then linear)', () => {
    const c = T.tensor([0.5, -1.25, 2, 0.125, 3, -0.75], [2, 3]);
    const noise = T.tensor([1, -2, 0.5, 0.25, -1, 2], [2, 3]);
    const sig = fluxSigmas({ steps: 8, shift: 3 }).sigmas;
    const states: Float32Array[] = [];
    const out = sampleUniPC(() => T.clone(c), noise, sig, { callback: (s) => states.push(s.x.toFloat32Array()) });
    expect(Array.from(out.toFloat32Array())).toEqual(Array.from(c.toFloat32Array()));
    const n = noise.toFloat32Array(), cc = c.toFloat32Array();
    states.forEach((x, i) => {
      const r = sig[i] / sig[0]; // x_sigma = (sigma/sigma0) x + (1 - sigma/sigma0) x0
      x.forEach((v, j) => expect(v).toBeCloseTo(r * n[j] + (1 - r) * cc[j], 5));
    });
  });

  it('calls the model once per step, at each sigma except the final 0, with orders 1, 2, 3, 3 ...', () => {
    const calls: [number, number][] = [];
    const noise = T.ones([1, 4]);
    const sig = fluxSigmas({ steps: 6, shift: 3 }).sigmas;
    const out = sampleUniPC((x, s, step) => (calls.push([s, step]), T.mul(x, 0.5)), noise, sig);
    expect(calls).toEqual(Array.from(sig.subarray(0, 6), (s, i) => [s, i]));
    out.dispose();
  });

  it('with one step returns the model at sigma 1', () => {
    const noise = T.tensor([1, 2], [1, 2]);
    const out = sampleUniPC((x) => T.add(x, 1), noise, [1, 0]);
    expect(Array.from(out.toFloat32Array())).toEqual([2, 3]);
  });

  it('frees its tensors when stopped early and leaves the noise alone', () => {
    const noise = T.ones([1, 8]);
    const before = T.memoryStats('cpu');
    const it = unipcSteps((x) => T.mul(x, 0.9), noise, fluxSigmas({ steps: 5, shift: 3 }).sigmas);
    it.next();
    it.next();
    it.next();
    it.return(undefined as never);
    // (a collected, undisposed tensor from elsewhere can only lower the count)
    expect(T.memoryStats('cpu').allocations).toBeLessThanOrEqual(before.allocations);
    expect(noise.disposed).toBe(false);
  });

  it('rejects bad sigmas and bad model outputs', () => {
    const noise = T.ones([1, 4]);
    expect(() => sampleUniPC((x) => T.clone(x), noise, [1])).toThrow(SamplerOptionError);
    expect(() => sampleUniPC((x) => T.clone(x), noise, [1, 0, 0.5])).toThrow(SamplerOptionError);
    expect(() => sampleUniPC(() => T.ones([4]), noise, [1, 0.5, 0])).toThrow(SamplerShapeError);
  });
});
