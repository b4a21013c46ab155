import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePromptSchedule, promptAt, sectionSpans, sectionWeights, type BlendOptions, type PromptSchedule } from '@framepack/prompt-blender';

const schedule = (video: number, cuts: [number, string][]): PromptSchedule => ({
  videoSeconds: video,
  defaultPrompt: null,
  prompts: cuts.map((c) => c[1]),
  segments: cuts.map(([start, prompt], i) => ({ start, end: cuts[i + 1]?.[0] ?? video, prompt, timed: true })),
});
const opts = (o: Partial<BlendOptions>): BlendOptions => ({ mode: 'f1', totalSections: 4, latentWindowSize: 9, fps: 30, blendSections: 0, ...o });

describe('sectionSpans', () => {
  it('maps generation order to frames of the final video (original runs backwards)', () => {
    const f1 = sectionSpans(opts({ mode: 'f1', totalSections: 3, latentWindowSize: 9 }));
    expect(f1.map((s) => [s.index, s.videoIndex, s.startFrame, s.endFrame])).toEqual([
      [0, 0, 0, 37],
      [1, 1, 37, 73],
      [2, 2, 73, 109],
    ]);
    const orig = sectionSpans(opts({ mode: 'original', totalSections: 3, latentWindowSize: 9 }));
    expect(orig.map((s) => [s.index, s.videoIndex, s.startFrame, s.endFrame])).toEqual([
      [0, 2, 73, 109],
      [1, 1, 37, 73],
      [2, 0, 0, 37],
    ]);
    expect(orig[0].startSeconds).toBeCloseTo(73 / 30, 12);
    // text-to-video: no image frame, 4W*N - 3 frames in all
    const t2v = sectionSpans(opts({ totalSections: 2, latentWindowSize: 5, startIsImage: false }));
    expect(t2v.map((s) => [s.startFrame, s.endFrame])).toEqual([
      [0, 17],
      [17, 37],
    ]);
  });

  it('rejects bad layouts', () => {
    expect(() => sectionSpans(opts({ totalSections: 0 }))).toThrow(/totalSections/);
    expect(() => sectionSpans(opts({ latentWindowSize: 2.5 }))).toThrow(/latentWindowSize/);
    expect(() => sectionSpans(opts({ mode: 'backwards' as 'f1' }))).toThrow(/mode/);
    expect(() => sectionWeights(schedule(5, [[0, 'a']]), opts({ blendSections: -1 }))).toThrow(/blendSections/);
  });

  it('spans tile the video without gaps for any layout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 16 }), fc.boolean(), fc.constantFrom<'original' | 'f1'>('original', 'f1'), (n, w, img, mode) => {
        const spans = sectionSpans(opts({ mode, totalSections: n, latentWindowSize: w, startIsImage: img })).sort((a, b) => a.videoIndex - b.videoIndex);
        expect(spans[0].startFrame).toBe(0);
        for (let i = 0; i + 1 < n; i++) expect(spans[i].endFrame).toBe(spans[i + 1].startFrame);
        // the frame count of FramePack's output: 4WN + 1 with an image, 4WN - 3 without
        expect(spans[n - 1].endFrame).toBe(4 * w * n + (img ? 1 : -3));
      }),
    );
  });
});

describe('sectionWeights', () => {
  it('without blending each section takes the prompt at its midpoint; original mode lists the end first', () => {
    const s = parsePromptSchedule('[0s: sits] [2s: stands] [4s: runs]', { videoSeconds: 5 });
    const w = sectionWeights(s, opts({ mode: 'original', totalSections: 4 }));
    // midpoints 4.23, 3.03, 1.83, 0.62 s
    expect(w.map((x) => x.weights)).toEqual([[{ prompt: 'runs', weight: 1 }], [{ prompt: 'stands', weight: 1 }], [{ prompt: 'sits', weight: 1 }], [{ prompt: 'sits', weight: 1 }]]);
  });

  it('a change on a section boundary ramps over B sections: 1/8, 3/8, 5/8, 7/8 for B = 4', () => {
    const c = (36 * 4 + 1) / 30; // the start of video section 4 at W = 9
    const w = sectionWeights(schedule(8 * 1.2, [[0, 'P'], [c, 'Q']]), opts({ totalSections: 8, blendSections: 4 }));
    const q = w.map((x) => x.weights.find((y) => y.prompt === 'Q')?.weight ?? 0);
    [0, 0, 1 / 8, 3 / 8, 5 / 8, 7 / 8, 1, 1].forEach((e, i) => expect(q[i]).toBeCloseTo(e, 12));
    // B = 1: a hard switch at the boundary; B = 2: 1/4, 3/4
    const q1 = sectionWeights(schedule(9.6, [[0, 'P'], [c, 'Q']]), opts({ totalSections: 8, blendSections: 1 })).map((x) => x.weights.map((y) => y.prompt).join());
    expect(q1).toEqual(['P', 'P', 'P', 'P', 'Q', 'Q', 'Q', 'Q']);
    const q2 = sectionWeights(schedule(9.6, [[0, 'P'], [c, 'Q']]), opts({ totalSections: 8, blendSections: 2 })).map((x) => x.weights.find((y) => y.prompt === 'Q')?.weight ?? 0);
    [0, 0, 0, 1 / 4, 3 / 4, 1, 1, 1].forEach((e, i) => expect(q2[i]).toBeCloseTo(e, 12));
  });

  it('a change inside a section with B = 1 mixes that section by the share each prompt covers', () => {
    // video section 1 is frames [37, 73): 1.2333..2.4333 s; the change at 1.5333 s leaves 0.3 s to P, 0.9 s to Q
    const w = sectionWeights(schedule(5, [[0, 'P'], [46 / 30, 'Q']]), opts({ totalSections: 3, blendSections: 1 }));
    expect(w[1].weights.map((x) => x.prompt)).toEqual(['P', 'Q']);
    expect(w[1].weights[0].weight).toBeCloseTo(0.25, 12);
    expect(w[1].weights[1].weight).toBeCloseTo(0.75, 12);
  });

  // random schedules with unique texts
  const scheduleArb = fc
    .record({ tenths: fc.integer({ min: 5, max: 200 }), cuts: fc.uniqueArray(fc.integer({ min: 1, max: 199 }), { maxLength: 6 }) })
    .map(({ tenths, cuts }) => {
      const pts = [0, ...cuts.filter((c) => c < tenths).sort((a, b) => a - b)];
      return parsePromptSchedule(pts.map((p, i) => `[${p / 10}s: prompt ${i}]`).join('\n'), { videoSeconds: tenths / 10 });
    });
  const layoutArb = fc.record({
    mode: fc.constantFrom<'original' | 'f1'>('original', 'f1'),
    totalSections: fc.integer({ min: 1, max: 14 }),
    latentWindowSize: fc.integer({ min: 1, max: 12 }),
    fps: fc.constantFrom(30, 24),
    blendSections: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.double({ min: 0, max: 6, noNaN: true })),
    startIsImage: fc.boolean(),
  });

  it('weights are positive, sum to 1, and every ramp is monotonic (a weight never rises again after falling)', () => {
    fc.assert(
      fc.property(scheduleArb, layoutArb, (s, layout) => {
        const w = sectionWeights(s, layout);
        const byVideo = [...w].sort((a, b) => a.videoIndex - b.videoIndex);
        for (const sec of w) {
          expect(sec.weights.length).toBeGreaterThan(0);
          for (const x of sec.weights) expect(x.weight).toBeGreaterThan(0);
          expect(sec.weights.reduce((t, x) => t + x.weight, 0)).toBeCloseTo(1, 9);
        }
        for (const p of s.prompts) {
          const series = byVideo.map((sec) => sec.weights.find((x) => x.prompt === p)?.weight ?? 0);
          let falling = false;
          for (let i = 1; i < series.length; i++) {
            if (series[i] < series[i - 1] - 1e-12) falling = true;
            else if (falling) expect(series[i]).toBeLessThanOrEqual(series[i - 1] + 1e-12);
          }
        }
        // the last prompt only grows across the video, the first only shrinks
        const last = byVideo.map((sec) => sec.weights.find((x) => x.prompt === s.prompts[s.prompts.length - 1])?.weight ?? 0);
        const first = byVideo.map((sec) => sec.weights.find((x) => x.prompt === s.prompts[0])?.weight ?? 0);
        for (let i = 1; i < last.length; i++) {
          expect(last[i]).toBeGreaterThanOrEqual(last[i - 1] - 1e-12);
          expect(first[i]).toBeLessThanOrEqual(first[i - 1] + 1e-12);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('original and F1 give each stretch of video the same prompts, in mirrored generation order', () => {
    fc.assert(
      fc.property(scheduleArb, layoutArb, (s, layout) => {
        const o = sectionWeights(s, { ...layout, mode: 'original' });
        const f = sectionWeights(s, { ...layout, mode: 'f1' });
        const n = layout.totalSections;
        for (let i = 0; i < n; i++) {
          expect(o[i].videoIndex).toBe(n - 1 - i);
          expect(o[i].weights).toEqual(f[n - 1 - i].weights);
        }
        // no blending: one prompt, the one at the midpoint
        for (const sec of sectionWeights(s, { ...layout, blendSections: 0 })) {
          expect(sec.weights).toEqual([{ prompt: promptAt(s, (sec.startSeconds + sec.endSeconds) / 2), weight: 1 }]);
        }
      }),
      { numRuns: 200 },
    );
  });
});
