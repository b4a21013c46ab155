import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PromptBlenderError, parsePromptSchedule } from '@framepack/prompt-blender';

// What the reference parser returned on a few prompts (quirks included); we check that we read the same prompt
// texts, keep every time inside the video, and refuse what the reference silently mangled.
const file = resolve(__dirname, '../../../../shared/reference-behaviour/prompts-timestamped/case.json');

describe.skipIf(!existsSync(file))('reference prompts (prompts-timestamped)', () => {
  const parses = JSON.parse(readFileSync(file, 'utf8')).parses as { prompt: string; total_seconds: number; sections: { prompt: string; start_time: number; end_time: number | null }[] }[];

  it('parses every reference prompt into the same texts with non-negative times, or a typed error', () => {
    expect(parses.length).toBeGreaterThan(0);
    let ok = 0;
    for (const p of parses) {
      let s;
      try {
        s = parsePromptSchedule(p.prompt, { videoSeconds: p.total_seconds });
      } catch (e) {
        expect(e).toBeInstanceOf(PromptBlenderError);
        // only prompts the reference mangled: text in brackets that is no timestamp, or a time past the end
        const starts = [...p.prompt.matchAll(/\[(\d+(?:\.\d+)?)s/g)].map((m) => Number(m[1]));
        const ends = [...p.prompt.matchAll(/-(\d+(?:\.\d+)?)s\s*:/g)].map((m) => Number(m[1]));
        const mangled = /\[(?!\s*\d)/.test(p.prompt) || starts.some((t) => t >= p.total_seconds) || ends.some((t) => t > p.total_seconds);
        expect(mangled, `${JSON.stringify(p.prompt)}: ${(e as Error).message}`).toBe(true);
        continue;
      }
      ok++;
      expect(new Set(s.prompts)).toEqual(new Set(p.sections.map((x) => x.prompt)));
      for (const seg of s.segments) {
        expect(seg.start).toBeGreaterThanOrEqual(0);
        expect(seg.end).toBeLessThanOrEqual(p.total_seconds);
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});
