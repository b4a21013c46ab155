import * as T from '@framepack/tensor-core';
import { roundHalfEven } from '@framepack/magcache';

/** Sizes of the clean-context windows FramePack feeds the packed DiT (fixed by the model's training). */
export const CONTEXT_4X = 16;
export const CONTEXT_2X = 2;
export const CONTEXT_1X = 1;

export type LoopMode = 'original' | 'f1';

/** Python's round(): halves go to the even neighbour. */
export { roundHalfEven };

/** Sections for a clip of `seconds` at 30 fps: each section adds 4 * window pixel frames. */
export function totalSections(seconds: number, windowSize: number): number {
  return Math.trunc(Math.max(roundHalfEven((seconds * 30) / (windowSize * 4)), 1));
}

/** The original (inverted) mode's padding per section, generated from the end of the video backwards. */
export function latentPaddings(sections: number): number[] {
  if (sections > 4) return [3, ...new Array(sections - 3).fill(2), 1, 0];
  return Array.from({ length: sections }, (_, i) => sections - 1 - i);
}

/** Frames in the finished video for a mode (image-to-video). */
export function expectedPixelFrames(mode: LoopMode, sections: number, windowSize: number): number {
  return 4 * windowSize * sections + 1;
}

/** What the sampler gets for one section: the noisy window's positions and the clean context with its positions. */
export interface SectionInputs {
  /** 0-based, in generation order. */
  index: number;
  total: number;
  isLast: boolean;
  /** Original mode: this section's latent padding (blank positions between the start frame and the window). */
  latentPadding?: number;
  /** Pixel frames of the window (4 * window - 3), as the reference passes it. */
  frames: number;
  latentIndices: T.Tensor;
  cleanLatents: T.Tensor;
  cleanLatentIndices: T.Tensor;
  cleanLatents2x: T.Tensor;
  cleanLatentIndices2x: T.Tensor;
  cleanLatents4x: T.Tensor;
  cleanLatentIndices4x: T.Tensor;
}

/** The window's DiT context (the packed model's input names) on `device`: fresh views or copies the caller disposes. */
export function sectionContextOn(s: SectionInputs, device: T.DeviceType) {
  const on = (t: T.Tensor) => T.toDevice(t, device);
  return {
    latentIndices: on(s.latentIndices),
    cleanLatents: on(s.cleanLatents), cleanLatentIndices: on(s.cleanLatentIndices),
    cleanLatents2x: on(s.cleanLatents2x), cleanLatentIndices2x: on(s.cleanLatentIndices2x),
    cleanLatents4x: on(s.cleanLatents4x), cleanLatentIndices4x: on(s.cleanLatentIndices4x),
  };
}

export interface SectionResult {
  index: number;
  total: number;
  /** Latent frames generated so far (start latent included where it belongs to the video). */
  latents: T.Tensor;
  /** The whole video decoded so far, (1, 3, frames, H, W) in [-1, 1], f32 on the CPU. */
  pixels: T.Tensor;
}

export interface LoopHooks {
  /** Denoise one window: returns (1, C, window, h, w) on any device (the loop takes it over). */
  sample(inputs: SectionInputs): Promise<T.Tensor>;
  /** VAE-decode latents (1, C, t, h, w) to pixels (1, 3, 4t - 3, H, W) on any device (the loop takes them over). */
  decode(latents: T.Tensor): Promise<T.Tensor>;
  /** Called after each section with the video so far (tensors stay owned by the loop). */
  onSection?(r: SectionResult): Promise<void> | void;
  signal?: AbortSignal;
}

export interface LoopOptions {
  mode: LoopMode;
  /** (1, C, 1, h, w) f32. */
  startLatent: T.Tensor;
  windowSize: number;
  sections: number;
  /** Original mode only: the end frame's latent, placed as the first generated section's clean post latent. */
  endLatent?: T.Tensor;
  /** Scale of the end latent (0..1]; 1 = as encoded. */
  endStrength?: number;
  /**
   * false for text-to-video: the start latent is noise, so it is not part of the video (original mode does not
   * prepend it on the last section; F1 does not put it in the history, though it stays clean context index 0).
   */
  startIsImage?: boolean;
}

export class GenerationCancelledError extends Error {
  constructor(readonly sectionsDone: number) {
    super(`generation cancelled after ${sectionsDone} finished section(s)`);
    this.name = 'GenerationCancelledError';
  }
}

const indexRange = (start: number, n: number) => T.reshape(T.arange(start, start + n, 1, { dtype: 'i64' }), [1, n]);

/**
 * w * a[-overlap:] + (1 - w) * b[:overlap] between a's head and b's tail, w falling linearly from 1 to 0
 * (FramePack's soft_append_bcthw). The overlap is clamped to both lengths; 0 concatenates.
 */
export function softAppend(a: T.Tensor, b: T.Tensor, overlap: number): T.Tensor {
  const ov = Math.min(overlap, a.shape[2], b.shape[2]);
  if (ov <= 0) return T.cat([a, b], 2);
  return T.tidy(() => {
    const w = T.reshape(T.tensor(Array.from({ length: ov }, (_, i) => (ov === 1 ? 1 : 1 - i / (ov - 1))), [ov]), [1, 1, ov, 1, 1]);
    const blend = T.add(T.mul(T.slice(a, 2, a.shape[2] - ov), w), T.mul(T.slice(b, 2, 0, ov), T.affine(w, -1, 1)));
    return T.cat([T.slice(a, 2, 0, a.shape[2] - ov), blend, T.slice(b, 2, ov)], 2);
  });
}

/** The loop holds its history and pixels on the CPU in f32: move a hook's result there and free the original. */
function takeToCpuF32(t: T.Tensor): T.Tensor {
  const host = T.tidy(() => T.cast(T.toDevice(t, 'cpu'), 'f32'));
  t.dispose();
  return host;
}

function checkCancelled(signal: AbortSignal | undefined, done: number) {
  if (signal?.aborted) throw new GenerationCancelledError(done);
}

/**
 * FramePack's section loop. Original: sections run from the end of the video backwards, the history grows at the
 * front and each new decode is blended in front of the pixels so far. F1: sections run forwards and append.
 * Returns the final latents and pixels (caller disposes).
 */
export async function runSectionLoop(opts: LoopOptions, hooks: LoopHooks): Promise<{ latents: T.Tensor; pixels: T.Tensor }> {
  const { startLatent, windowSize: W, sections } = opts;
  if (startLatent.ndim !== 5 || startLatent.shape[2] !== 1) throw new Error(`start latent must be (1, C, 1, h, w), got [${startLatent.shape}]`);
  if (!Number.isInteger(W) || W < 1) throw new Error(`latent window size must be a positive integer, got ${W}`);
  if (!Number.isInteger(sections) || sections < 1) throw new Error(`sections must be a positive integer, got ${sections}`);
  const startIsImage = opts.startIsImage ?? true;
  const [, C, , h, w] = startLatent.shape;
  const contextLen = CONTEXT_1X + CONTEXT_2X + CONTEXT_4X;
  const overlap = 4 * W - 3;
  const start = T.tidy(() => T.cast(T.toDevice(startLatent, 'cpu'), 'f32'));

  let history: T.Tensor;
  let generatedCount: number;
  if (opts.mode === 'original') {
    history = T.zeros([1, C, contextLen, h, w]);
    generatedCount = 0;
  } else {
    const zeros = T.zeros([1, C, contextLen, h, w]);
    history = startIsImage ? T.cat([zeros, start], 2) : zeros;
    if (history !== zeros) zeros.dispose();
    generatedCount = startIsImage ? 1 : 0;
  }
  let pixels: T.Tensor | null = null;
  const paddings = opts.mode === 'original' ? latentPaddings(sections) : new Array(sections).fill(0);

  try {
    for (let s = 0; s < sections; s++) {
      checkCancelled(hooks.signal, s);
      const isLast = s === sections - 1;
      const inputs = opts.mode === 'original' ? originalInputs(s) : f1Inputs(s);
      let generated: T.Tensor;
      try {
        generated = await hooks.sample(inputs);
      } finally {
        for (const v of Object.values(inputs)) if (v instanceof T.Tensor) v.dispose();
      }
      checkCancelled(hooks.signal, s); // a cancelled section's frames are never decoded or reported
      generated = takeToCpuF32(generated);
      if (opts.mode === 'original' && isLast && startIsImage) {
        const g = T.cat([start, generated], 2);
        generated.dispose();
        generated = g;
      }
      generatedCount += generated.shape[2];
      const grown = opts.mode === 'original' ? T.cat([generated, history], 2) : T.cat([history, generated], 2);
      history.dispose();
      generated.dispose();
      history = grown;

      const real = opts.mode === 'original' ? T.slice(history, 2, 0, generatedCount) : T.slice(history, 2, history.shape[2] - generatedCount);
      let nextPixels: T.Tensor;
      if (!pixels) nextPixels = takeToCpuF32(await hooks.decode(real));
      else if (opts.mode === 'original') {
        const n = isLast && startIsImage ? 2 * W + 1 : 2 * W;
        const part = T.slice(real, 2, 0, Math.min(n, real.shape[2]));
        const current = takeToCpuF32(await hooks.decode(part));
        nextPixels = softAppend(current, pixels, overlap);
        part.dispose();
        current.dispose();
      } else {
        const part = T.slice(real, 2, Math.max(0, real.shape[2] - 2 * W));
        const current = takeToCpuF32(await hooks.decode(part));
        nextPixels = softAppend(pixels, current, overlap);
        part.dispose();
        current.dispose();
      }
      pixels?.dispose();
      pixels = nextPixels;
      await hooks.onSection?.({ index: s, total: sections, latents: real, pixels });
      if (isLast) return { latents: real, pixels };
      real.dispose();
    }
    throw new Error('unreachable');
  } catch (e) {
    pixels?.dispose();
    throw e;
  } finally {
    history.dispose();
    start.dispose();
  }

  function originalInputs(s: number): SectionInputs {
    const pad = paddings[s] * W;
    const isLast = s === sections - 1;
    return T.tidy(() => {
      // positions: [start][pad blanks][window][post][2x][4x]
      const latentIndices = indexRange(1 + pad, W);
      const postAt = 1 + pad + W;
      const cleanLatentIndices = T.cat([indexRange(0, 1), indexRange(postAt, 1)], 1);
      let post = T.slice(history, 2, 0, 1);
      if (s === 0 && opts.endLatent) post = T.mul(T.cast(T.toDevice(opts.endLatent, 'cpu'), 'f32'), opts.endStrength ?? 1);
      return {
        index: s, total: sections, isLast, latentPadding: paddings[s], frames: 4 * W - 3,
        latentIndices,
        cleanLatents: T.cat([start, post], 2),
        cleanLatentIndices,
        cleanLatents2x: T.slice(history, 2, 1, 1 + CONTEXT_2X),
        cleanLatentIndices2x: indexRange(postAt + 1, CONTEXT_2X),
        cleanLatents4x: T.slice(history, 2, 1 + CONTEXT_2X, contextLen),
        cleanLatentIndices4x: indexRange(postAt + 1 + CONTEXT_2X, CONTEXT_4X),
      };
    });
  }
  function f1Inputs(s: number): SectionInputs {
    return T.tidy(() => {
      // positions: [start][4x][2x][1x][window]
      const tail = T.slice(history, 2, history.shape[2] - contextLen);
      return {
        index: s, total: sections, isLast: s === sections - 1, frames: 4 * W - 3,
        latentIndices: indexRange(1 + contextLen, W),
        cleanLatents: T.cat([start, T.slice(tail, 2, CONTEXT_4X + CONTEXT_2X)], 2),
        cleanLatentIndices: T.cat([indexRange(0, 1), indexRange(1 + CONTEXT_4X + CONTEXT_2X, 1)], 1),
        cleanLatents2x: T.slice(tail, 2, CONTEXT_4X, CONTEXT_4X + CONTEXT_2X),
        cleanLatentIndices2x: indexRange(1 + CONTEXT_4X, CONTEXT_2X),
        cleanLatents4x: T.slice(tail, 2, 0, CONTEXT_4X),
        cleanLatentIndices4x: indexRange(1, CONTEXT_4X),
      };
    });
  }
}
