import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PromptBlenderError, PromptSyntaxError, parsePromptSchedule, promptAt, type PromptSchedule } from '@framepack/prompt-blender';

const seg = (s: PromptSchedule) => s.segments.map((x) => [x.start, x.end, x.prompt]);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof PromptBlenderError) return e.code;
    throw e;
  }
  return undefined;
}

describe('parsePromptSchedule', () => {
  it('untimed text alone covers the whole video', () => {
    const s = parsePromptSchedule('  a cat walks on the grass\n', { videoSeconds: 5 });
    expect(seg(s)).toEqual([[0, 5, 'a cat walks on the grass']]);
    expect(s.defaultPrompt).toBe('a cat walks on the grass');
    expect(seg(parsePromptSchedule('', { videoSeconds: 2 }))).toEqual([[0, 2, '']]);
  });

  it('open entries run to the next start, ranges end where they say, the default fills the rest', () => {
    const s = parsePromptSchedule('[1s: waves] a man\n[2.5s-4s: smiles]', { videoSeconds: 6 });
    expect(seg(s)).toEqual([
      [0, 1, 'a man'],
      [1, 2.5, 'waves'],
      [2.5, 4, 'smiles'],
      [4, 6, 'a man'],
    ]);
    expect(s.prompts).toEqual(['a man', 'waves', 'smiles']);
    expect(s.segments.map((x) => x.timed)).toEqual([false, true, true, false]);
  });

  it('entries in any order, free whitespace, text across lines; neighbours with the same text merge', () => {
    const s = parsePromptSchedule('[ 4 s :  the cat\n runs away ]\n\n[0s:a cat sits]  [2s-4s: a cat sits]', { videoSeconds: 5 });
    expect(seg(s)).toEqual([
      [0, 4, 'a cat sits'],
      [4, 5, 'the cat\n runs away'],
    ]);
  });

  it('without untimed text the first prompt also covers the time before it', () => {
    expect(seg(parsePromptSchedule('[1s: a man waves]\n[3s: the man smiles]', { videoSeconds: 5 }))).toEqual([
      [0, 3, 'a man waves'],
      [3, 5, 'the man smiles'],
    ]);
  });

  it('untimed pieces are trimmed and joined with one space', () => {
    expect(parsePromptSchedule('a red car\n[1s: turns]\n on a road ', { videoSeconds: 3 }).defaultPrompt).toBe('a red car on a road');
  });

  it('promptAt picks the segment holding t, clamped to the video', () => {
    const s = parsePromptSchedule('[0s: a] [2s: b]', { videoSeconds: 4 });
    expect([-1, 0, 1.999, 2, 3.5, 4, 9].map((t) => promptAt(s, t))).toEqual(['a', 'a', 'a', 'b', 'b', 'b', 'b']);
  });

  it('invalid prompts are typed errors with a position', () => {
    const v = { videoSeconds: 5 };
    expect(codeOf(() => parsePromptSchedule('[0s: a] [2s: b', v))).toBe('E_UNCLOSED');
    expect(codeOf(() => parsePromptSchedule('a]', v))).toBe('E_STRAY_BRACKET');
    expect(codeOf(() => parsePromptSchedule('[0s: a [1s: b]]', v))).toBe('E_NESTED');
    expect(codeOf(() => parsePromptSchedule('no timestamps here [but brackets]', v))).toBe('E_TIME_SYNTAX');
    expect(codeOf(() => parsePromptSchedule('[2: missing unit]', v))).toBe('E_TIME_SYNTAX');
    expect(codeOf(() => parsePromptSchedule('[-1s: negative]', v))).toBe('E_TIME_SYNTAX');
    expect(codeOf(() => parsePromptSchedule('[3s-2s: backwards]', v))).toBe('E_RANGE');
    expect(codeOf(() => parsePromptSchedule('[0s: a] [10s: b]', v))).toBe('E_BEYOND_VIDEO');
    expect(codeOf(() => parsePromptSchedule('[5s: at the very end]', v))).toBe('E_BEYOND_VIDEO');
    expect(codeOf(() => parsePromptSchedule('[4s-5.5s: past the end]', v))).toBe('E_BEYOND_VIDEO');
    expect(codeOf(() => parsePromptSchedule('[0s-3s: a] [2s-4s: b]', v))).toBe('E_OVERLAP');
    expect(codeOf(() => parsePromptSchedule('[0s-3s: a] [2s: b]', v))).toBe('E_OVERLAP');
    expect(codeOf(() => parsePromptSchedule('[1s: a] x [1s-2s: b]', v))).toBe('E_OVERLAP');
    expect(codeOf(() => parsePromptSchedule('[0s-1s: a] [3s: b]', v))).toBe('E_GAP');
    expect(codeOf(() => parsePromptSchedule('[0s-1s: a]', v))).toBe('E_GAP');
    expect(codeOf(() => parsePromptSchedule('a', { videoSeconds: 0 }))).toBe('E_OPTIONS');
    try {
      parsePromptSchedule('a cat\n  [2s: sits', v);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PromptSyntaxError);
      expect(e).toMatchObject({ line: 2, column: 3, code: 'E_UNCLOSED' });
      expect((e as Error).message).toMatch(/line 2, column 3: "\[" is never closed/);
    }
    expect(() => parsePromptSchedule('[0s-1s: a] [3s: b]', v)).toThrow(/no prompt covers 1s-3s of the 5s video/);
  });
});

// ------------------------------------------------------------------ property tests

/** A random valid schedule as the test sees it: cut points in tenths of a second and what fills each piece. */
interface Model {
  video: number; // seconds
  hasDefault: boolean;
  pieces: { start: number; end: number; kind: 'open' | 'range' | 'default'; text: string }[];
}

const modelArb: fc.Arbitrary<Model> = fc
  .record({
    tenths: fc.integer({ min: 5, max: 300 }),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: 299 }), { maxLength: 8 }),
    kinds: fc.array(fc.constantFrom('open', 'range', 'default'), { minLength: 9, maxLength: 9 }),
    hasDefault: fc.boolean(),
  })
  .map(({ tenths, cuts, kinds, hasDefault }) => {
    const points = [0, ...cuts.filter((c) => c < tenths).sort((a, b) => a - b), tenths];
    const pieces: Model['pieces'] = [];
    for (let i = 0; i + 1 < points.length; i++) {
      let kind = kinds[i] as Model['pieces'][number]['kind'];
      if (!hasDefault && kind === 'default') kind = 'range';
      // an open entry ends where the next timed entry starts, so it may not be followed by default text
      pieces.push({ start: points[i] / 10, end: points[i + 1] / 10, kind, text: `p${i % 3 === 2 ? 0 : i}` });
    }
    for (let i = 0; i < pieces.length; i++) {
      const next = pieces[i + 1];
      if (pieces[i].kind === 'open' && next?.kind === 'default') pieces[i].kind = 'range';
      if (pieces[i].kind === 'default') pieces[i].text = 'the default';
    }
    return { video: tenths / 10, hasDefault: hasDefault || pieces.every((p) => p.kind === 'default'), pieces };
  });

function render(m: Model, order: number[], sep: string[]): string {
  const entries = m.pieces.filter((p) => p.kind !== 'default').map((p) => (p.kind === 'open' ? `[${p.start}s: ${p.text}]` : `[${p.start}s-${p.end}s: ${p.text}]`));
  // any order of the entries (ties broken by position)
  const shuffled = entries.map((e, i) => [order[i], i, e] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((x) => x[2]);
  // the default text in two pieces around the entries ("the" ... "default" joins to "the default")
  const parts = !m.hasDefault ? shuffled : shuffled.length ? ['the', ...shuffled, 'default'] : ['the default'];
  return parts.map((p, i) => p + sep[i % sep.length]).join('');
}

const expectedAt = (m: Model, t: number) => {
  for (const p of m.pieces) if (t < p.end) return p.text;
  return m.pieces[m.pieces.length - 1].text;
};

describe('properties', () => {
  const renderArb = fc.tuple(modelArb, fc.array(fc.nat(20), { minLength: 9, maxLength: 9 }), fc.array(fc.constantFrom(' ', '\n', '  ', '\n\n', '\t'), { minLength: 1, maxLength: 4 }));

  it('every time of the video is covered by exactly one prompt, the one the text says', () => {
    fc.assert(
      fc.property(renderArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 20, maxLength: 20 }), ([m, order, sep], us) => {
        const s = parsePromptSchedule(render(m, order, sep), { videoSeconds: m.video });
        expect(s.segments[0].start).toBe(0);
        expect(s.segments[s.segments.length - 1].end).toBe(m.video);
        for (let i = 0; i + 1 < s.segments.length; i++) {
          expect(s.segments[i].end).toBe(s.segments[i + 1].start);
          expect(s.segments[i].prompt).not.toBe(s.segments[i + 1].prompt);
        }
        for (const u of us) {
          const t = u * m.video;
          const holders = s.segments.filter((x) => x.start <= t && (t < x.end || (t === m.video && x.end === m.video)));
          expect(holders).toHaveLength(1);
          expect(promptAt(s, t)).toBe(expectedAt(m, t));
        }
        // and at every whole second
        for (let t = 0; t < m.video; t++) expect(s.segments.filter((x) => x.start <= t && t < x.end)).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });

  it('overlapping entries, times beyond the video and unclosed brackets are typed errors', () => {
    fc.assert(
      fc.property(renderArb, fc.nat(), fc.integer({ min: 1, max: 50 }), ([m, order, sep], pick, extra) => {
        const text = render(m, order, sep);
        const timed = m.pieces.filter((p) => p.kind !== 'default');
        // beyond: a prompt starting at or after the end
        expect(codeOf(() => parsePromptSchedule(`${text} [${m.video + extra / 10}s: late]`, { videoSeconds: m.video }))).toBe('E_BEYOND_VIDEO');
        expect(codeOf(() => parsePromptSchedule(`${text} [0s-${m.video + extra / 10}s: long]`, { videoSeconds: m.video }))).toBe('E_BEYOND_VIDEO');
        // unclosed: drop one closing bracket, or add a dangling opening one
        if (timed.length > 0) {
          const closes = [...text.matchAll(/\]/g)].map((x) => x.index!);
          const at = closes[pick % closes.length];
          const code = codeOf(() => parsePromptSchedule(text.slice(0, at) + text.slice(at + 1), { videoSeconds: m.video }));
          expect(code === 'E_UNCLOSED' || code === 'E_NESTED').toBe(true);
        }
        expect(codeOf(() => parsePromptSchedule(`${text}[1s: never closed`, { videoSeconds: m.video }))).toBe('E_UNCLOSED');
        // overlap: a range over an existing entry's start
        if (timed.length > 0) {
          const p = timed[pick % timed.length];
          const end = Math.min(m.video, p.end);
          const s = Math.max(0, p.start - 0.05);
          expect(codeOf(() => parsePromptSchedule(`${text} [${s}s-${end}s: intruder]`, { videoSeconds: m.video }))).toBe('E_OVERLAP');
        }
      }),
      { numRuns: 300 },
    );
  });
});
