import { describe, expect, it } from 'vitest';
import { calculateFluxMu, fluxSigmas, linspaceF32, SamplerOptionError, seqLengthOf } from '@framepack/k-diffusion';

// FramePack's 25-step schedule at every real resolution (mu clamped to ln 7), measured with PyTorch (research §2.1).
const FRAMEPACK_25 = [
  1.0, 0.9940827488899231, 0.987730085849762, 0.9808917045593262, 0.9735099673271179, 0.9655172228813171, 0.9568345546722412, 0.9473684430122375,
  0.9370078444480896, 0.9256197810173035, 0.9130434989929199, 0.8990825414657593, 0.8834951519966125, 0.8659793138504028, 0.8461538553237915,
  0.8235294222831726, 0.797468364238739, 0.767123281955719, 0.7313432693481445, 0.6885245442390442, 0.6363636255264282, 0.5714285373687744,
  0.4883720576763153, 0.37837839126586914, 0.22580644488334656, 0.0,
];

describe('flux sigmas', () => {
  it('mu is the line through (256, 0.5) and (4096, 1.15), clamped at ln 7', () => {
    expect(calculateFluxMu(256)).toBe(0.5);
    expect(calculateFluxMu(4096)).toBeCloseTo(1.15, 14);
    expect(calculateFluxMu(13464)).toBe(Math.log(7));
    expect(calculateFluxMu(13464)).toBe(1.9459101490553132);
    expect(seqLengthOf(9, 80, 76)).toBe(13680);
  });

  it('reproduces FramePack schedule bit for bit, from the sequence length or from shift 7', () => {
    expect(Array.from(fluxSigmas({ steps: 25, seqLength: 13680 }).sigmas)).toEqual(FRAMEPACK_25);
    expect(Array.from(fluxSigmas({ steps: 25, shift: 7 }).sigmas)).toEqual(FRAMEPACK_25);
  });

  it('runs from exactly 1 to exactly 0, strictly decreasing, for many step counts and shifts', () => {
    for (const steps of [1, 2, 3, 7, 25, 50, 100])
      for (const opts of [{ seqLength: 64 }, { seqLength: 5000 }, { shift: 1 }, { shift: 3 }, { shift: 13 }]) {
        const s = fluxSigmas({ steps, ...opts }).sigmas;
        expect(s.length).toBe(steps + 1);
        expect(s[0]).toBe(1);
        expect(s[steps]).toBe(0);
        for (let i = 1; i <= steps; i++) expect(s[i]).toBeLessThan(s[i - 1]);
      }
  });

  it('a larger shift keeps sigmas higher (more time at high noise)', () => {
    const lo = fluxSigmas({ steps: 10, shift: 2 }).sigmas, hi = fluxSigmas({ steps: 10, shift: 8 }).sigmas;
    for (let i = 1; i < 10; i++) expect(hi[i]).toBeGreaterThan(lo[i]);
  });

  it('linspace follows torch: start + i*step in the first half, end - (n-1-i)*step after', () => {
    const t = linspaceF32(1, 0, 26);
    const step = Math.fround(-1 / 25);
    expect(t[12]).toBe(Math.fround(1 + Math.fround(step * 12)));
    expect(t[13]).toBe(Math.fround(0 - Math.fround(step * 12)));
    expect(t[25]).toBe(0);
  });

  it('rejects bad options', () => {
    expect(() => fluxSigmas({ steps: 0, shift: 3 })).toThrow(SamplerOptionError);
    expect(() => fluxSigmas({ steps: 2.5, shift: 3 })).toThrow(SamplerOptionError);
    expect(() => fluxSigmas({ steps: 5, shift: -1 })).toThrow(SamplerOptionError);
    expect(() => fluxSigmas({ steps: 5 })).toThrow(SamplerOptionError);
  });
});
