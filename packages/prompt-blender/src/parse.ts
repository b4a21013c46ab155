import { PromptBlenderError, PromptSyntaxError } from './errors.js';

/** One stretch of the video, [start, end) in seconds of the final video, and the prompt that describes it. */
export interface PromptSegment {
  start: number;
  end: number;
  prompt: string;
  /** false when the stretch is filled by the untimed default text. */
  timed: boolean;
}

/**
 * A parsed timestamped prompt: segments sorted by time, contiguous (each `end` is the next `start`), covering
 * exactly [0, videoSeconds]. Neighbouring segments never carry the same text (they are merged).
 */
export interface PromptSchedule {
  videoSeconds: number;
  segments: PromptSegment[];
  /** The untimed text, or null when the prompt has none. */
  defaultPrompt: string | null;
  /** Unique prompt texts in order of first appearance in video time. */
  prompts: string[];
}

export interface ParseOptions {
  /** Length of the final video in seconds (the time axis of the timestamps). */
  videoSeconds: number;
}

interface Timed {
  start: number;
  end: number | null;
  prompt: string;
  offset: number;
}

const NUM = String.raw`(\d+(?:\.\d*)?|\.\d+)`;
// `2s: text`, `2.5 s - 4s : text` (whitespace is free around every token; the `s` is required)
const ENTRY_RE = new RegExp(String.raw`^\s*${NUM}\s*s\s*(?:-\s*${NUM}\s*s\s*)?:([\s\S]*)$`);

function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset; i++) if (text[i] === '\n') (line++, (last = i));
  return { line, column: offset - last };
}

const fmt = (t: number) => `${Number(t.toFixed(6))}s`;

/**
 * Parse `[2s: text]` / `[2.5s-4s: text]` entries plus untimed text (the default prompt) into a schedule.
 *
 * - `[a s: text]` starts at a and lasts until the next timed entry starts, or to the end of the video.
 * - `[a s-b s: text]` covers [a, b).
 * - Untimed text (everything outside brackets, each piece trimmed, pieces joined with one space) covers every
 *   time no timed entry covers. Without untimed text the first timed prompt also covers the time before it,
 *   and any other uncovered time (after a range's end) is an error (E_GAP).
 * - Bracket text may span lines. Times are seconds of the final video, are not snapped to sections, and must
 *   lie inside the video: start < videoSeconds, end <= videoSeconds.
 */
export function parsePromptSchedule(text: string, opts: ParseOptions): PromptSchedule {
  if (typeof text !== 'string') throw new PromptBlenderError(`prompt must be a string, got ${typeof text}`, 'E_OPTIONS');
  const videoSeconds = opts?.videoSeconds;
  if (typeof videoSeconds !== 'number' || !Number.isFinite(videoSeconds) || videoSeconds <= 0) {
    throw new PromptBlenderError(`videoSeconds must be a positive number of seconds, got ${videoSeconds}`, 'E_OPTIONS');
  }
  const err = (msg: string, code: ConstructorParameters<typeof PromptSyntaxError>[1], offset: number) => {
    const p = position(text, offset);
    return new PromptSyntaxError(msg, code, p.line, p.column);
  };

  // 1. split into bracket entries and untimed pieces
  const timed: Timed[] = [];
  const untimed: string[] = [];
  let i = 0;
  let pieceStart = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ']') throw err(`"]" without a matching "["`, 'E_STRAY_BRACKET', i);
    if (c !== '[') {
      i++;
      continue;
    }
    untimed.push(text.slice(pieceStart, i));
    let j = i + 1;
    while (j < text.length && text[j] !== ']') {
      if (text[j] === '[') throw err(`"[" inside the bracket opened at ${describe(text, i)}; brackets cannot nest`, 'E_NESTED', j);
      j++;
    }
    if (j >= text.length) throw err(`"[" is never closed; write [<start>s: text] or [<start>s-<end>s: text]`, 'E_UNCLOSED', i);
    const body = text.slice(i + 1, j);
    const m = ENTRY_RE.exec(body);
    if (!m) {
      throw err(`"[${clip(body)}]" is not a timed prompt; write [<start>s: text] or [<start>s-<end>s: text] (times in seconds, e.g. [2.5s-4s: ...])`, 'E_TIME_SYNTAX', i);
    }
    const start = Number(m[1]);
    const end = m[2] === undefined ? null : Number(m[2]);
    if (end !== null && !(end > start)) throw err(`the range ${fmt(start)}-${fmt(end)} is empty; its end must be after its start`, 'E_RANGE', i);
    if (start >= videoSeconds) throw err(`the prompt starts at ${fmt(start)}, at or after the end of the ${fmt(videoSeconds)} video`, 'E_BEYOND_VIDEO', i);
    if (end !== null && end > videoSeconds) throw err(`the range ${fmt(start)}-${fmt(end)} ends after the end of the ${fmt(videoSeconds)} video`, 'E_BEYOND_VIDEO', i);
    timed.push({ start, end, prompt: m[3].trim(), offset: i });
    i = j + 1;
    pieceStart = i;
  }
  untimed.push(text.slice(pieceStart));
  const defaultText = untimed.map((s) => s.trim()).filter((s) => s.length > 0).join(' ');
  // a prompt without any timed entry is its own default, even when empty
  const defaultPrompt = defaultText.length > 0 || timed.length === 0 ? defaultText : null;

  // 2. resolve open ends and check for overlaps
  timed.sort((a, b) => a.start - b.start || a.offset - b.offset);
  const spans: PromptSegment[] = [];
  for (let k = 0; k < timed.length; k++) {
    const e = timed[k];
    const next = timed[k + 1];
    if (next && next.start === e.start) {
      throw err(`two prompts start at ${fmt(e.start)} (the other one is at ${describe(text, e.offset)})`, 'E_OVERLAP', next.offset);
    }
    const end = e.end ?? (next ? next.start : videoSeconds);
    if (next && end > next.start) {
      throw err(`the prompt starting at ${fmt(next.start)} overlaps the range ${fmt(e.start)}-${fmt(end)} (at ${describe(text, e.offset)})`, 'E_OVERLAP', next.offset);
    }
    spans.push({ start: e.start, end, prompt: e.prompt, timed: true });
  }

  // 3. fill the uncovered time with the default text; without one, the first timed prompt also covers the
  //    time before it (`[1s: a] [3s: b]` starts with a), and any other gap is an error
  if (defaultPrompt === null && spans.length > 0) spans[0].start = 0;
  const filled: PromptSegment[] = [];
  let t = 0;
  const fill = (until: number) => {
    if (until <= t) return;
    if (defaultPrompt === null) {
      throw new PromptBlenderError(
        `no prompt covers ${fmt(t)}-${fmt(until)} of the ${fmt(videoSeconds)} video; add untimed text as the default prompt, or timed prompts that cover it`,
        'E_GAP',
      );
    }
    filled.push({ start: t, end: until, prompt: defaultPrompt, timed: false });
  };
  for (const s of spans) {
    fill(s.start);
    filled.push(s);
    t = s.end;
  }
  fill(videoSeconds);

  // 4. merge neighbours with the same text (no change there, so nothing to blend)
  const segments: PromptSegment[] = [];
  for (const s of filled) {
    const prev = segments[segments.length - 1];
    if (prev && prev.prompt === s.prompt) {
      prev.end = s.end;
      prev.timed = prev.timed || s.timed;
    } else segments.push({ ...s });
  }
  const prompts = [...new Set(segments.map((s) => s.prompt))];
  return { videoSeconds, segments, defaultPrompt, prompts };
}

/** The prompt at time t (seconds of the final video); t is clamped to [0, videoSeconds]. */
export function promptAt(schedule: PromptSchedule, t: number): string {
  const segs = schedule.segments;
  for (const s of segs) if (t < s.end) return s.prompt;
  return segs[segs.length - 1].prompt;
}

function describe(text: string, offset: number): string {
  const p = position(text, offset);
  return `line ${p.line}, column ${p.column}`;
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > 40 ? `${one.slice(0, 37)}...` : one;
}
