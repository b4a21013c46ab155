import { PromptBlenderError } from './errors.js';
import type { PromptSchedule } from './parse.js';

export type SectionMode = 'original' | 'f1';

export interface SectionLayout {
  /** `original`: FramePack's inverted loop, sections generated from the end of the video backwards; `f1`: forwards. */
  mode: SectionMode;
  totalSections: number;
  latentWindowSize: number;
  /** Frames per second of the final video (FramePack: 30). */
  fps: number;
  /**
   * true (default, image-to-video): latent 0 is the input image and its pixel frame 0 belongs to the first
   * section in video time. false (text-to-video): the start latent is not part of the video.
   */
  startIsImage?: boolean;
}

export interface BlendOptions extends SectionLayout {
  /**
   * Width of the blend at each prompt change, in sections (0 = no blending: each section takes the prompt
   * at its midpoint). See `sectionWeights`.
   */
  blendSections: number;
}

/** Where a section lies in the final video. */
export interface SectionSpan {
  /** Index in generation order (the order the sampler runs). */
  index: number;
  /** Index in video order (0 = the section at the start of the video). */
  videoIndex: number;
  /** Pixel frames [startFrame, endFrame) of the final video. */
  startFrame: number;
  endFrame: number;
  /** The same in seconds: startFrame / fps, endFrame / fps. */
  startSeconds: number;
  endSeconds: number;
}

export interface PromptWeight {
  prompt: string;
  weight: number;
}

export interface SectionWeights extends SectionSpan {
  /** Prompts mixed into this section, weights > 0 summing to 1, in video-time order of the prompts. */
  weights: PromptWeight[];
}

function checkLayout(o: SectionLayout): void {
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;
  if (o.mode !== 'original' && o.mode !== 'f1') throw new PromptBlenderError(`mode must be 'original' or 'f1', got ${String(o.mode)}`, 'E_OPTIONS');
  if (!posInt(o.totalSections)) throw new PromptBlenderError(`totalSections must be a positive integer, got ${o.totalSections}`, 'E_OPTIONS');
  if (!posInt(o.latentWindowSize)) throw new PromptBlenderError(`latentWindowSize must be a positive integer, got ${o.latentWindowSize}`, 'E_OPTIONS');
  if (typeof o.fps !== 'number' || !Number.isFinite(o.fps) || o.fps <= 0) throw new PromptBlenderError(`fps must be a positive number, got ${o.fps}`, 'E_OPTIONS');
}

/**
 * The pixel frames each section becomes in the final video. Every section samples `latentWindowSize` latent
 * frames; latent k >= 1 decodes to pixel frames 4k-3..4k and latent 0 to frame 0. With an input image the
 * final latents are [image, window 0, window 1, ...] in video order, so video section v holds frames
 * [4Wv + 1, 4W(v+1) + 1), the first one also frame 0. Without it they are [window 0, ...]: [4Wv - 3, 4W(v+1) - 3),
 * the first one from frame 0. In original mode generation index s is video section N-1-s; in F1 it is s.
 */
export function sectionSpans(layout: SectionLayout): SectionSpan[] {
  checkLayout(layout);
  const { totalSections: n, latentWindowSize: w, fps } = layout;
  const shift = (layout.startIsImage ?? true) ? 1 : -3;
  const out: SectionSpan[] = [];
  for (let s = 0; s < n; s++) {
    const v = layout.mode === 'original' ? n - 1 - s : s;
    const startFrame = v === 0 ? 0 : 4 * w * v + shift;
    const endFrame = 4 * w * (v + 1) + shift;
    out.push({ index: s, videoIndex: v, startFrame, endFrame, startSeconds: startFrame / fps, endSeconds: endFrame / fps });
  }
  return out;
}

/**
 * Which prompts condition each section, and how much (pure numbers; no tensors).
 *
 * `blendSections` = 0: the prompt at the section's midpoint in video time.
 * `blendSections` = B > 0: the prompts averaged over a window of B section lengths (4W/fps seconds each)
 * centred on the section's midpoint. The weight of a prompt is the share of that window it covers; the
 * first prompt is taken to extend before 0 and the last past the end of the video, so weights always sum to 1.
 * For a single change at time c from P to Q this is a linear crossfade lasting B section lengths with its
 * crossover (equal weights) exactly at c: weight(Q) = clamp(1/2 + (midpoint - c) / (B * sectionSeconds), 0, 1).
 * When c falls on a section boundary and B is even, B sections are mixed with Q weights
 * 1/(2B), 3/(2B), ..., (2B-1)/(2B) (B = 4: 1/8, 3/8, 5/8, 7/8); B = 1 then switches hard at the boundary,
 * while a change that falls inside a section mixes that section by the share each prompt covers.
 * Prompts shorter than the window mix with both neighbours. A prompt's weight never rises again once it has
 * started to fall (monotonic ramps), and the same text in two places of the schedule counts as one prompt.
 * Sections come back in generation order (original mode: the end of the video first).
 */
export function sectionWeights(schedule: PromptSchedule, opts: BlendOptions): SectionWeights[] {
  const b = opts.blendSections;
  if (typeof b !== 'number' || !Number.isFinite(b) || b < 0) throw new PromptBlenderError(`blendSections must be a number >= 0, got ${b}`, 'E_OPTIONS');
  const spans = sectionSpans(opts);
  const segs = schedule.segments;
  const width = (b * 4 * opts.latentWindowSize) / opts.fps;
  return spans.map((span) => {
    const mid = (span.startSeconds + span.endSeconds) / 2;
    const acc = new Map<string, number>();
    // a window far below one frame is no blend (and would only produce float dust)
    if (width < 1e-6 / opts.fps) acc.set(segAt(segs, mid).prompt, 1);
    else {
      const lo = mid - width / 2;
      const hi = mid + width / 2;
      segs.forEach((s, k) => {
        const a = k === 0 ? -Infinity : s.start;
        const e = k === segs.length - 1 ? Infinity : s.end;
        const cover = Math.min(hi, e) - Math.max(lo, a);
        if (cover > 0) acc.set(s.prompt, (acc.get(s.prompt) ?? 0) + cover / width);
      });
    }
    // drop float dust and renormalise so the weights sum to exactly 1 (up to rounding)
    const kept = [...acc].filter(([, w]) => w > 1e-9);
    const sum = kept.reduce((t, [, w]) => t + w, 0);
    const weights = kept.map(([prompt, w]) => ({ prompt, weight: kept.length === 1 ? 1 : w / sum }));
    return { ...span, weights };
  });
}

function segAt(segs: PromptSchedule['segments'], t: number) {
  for (const s of segs) if (t < s.end) return s;
  return segs[segs.length - 1];
}
