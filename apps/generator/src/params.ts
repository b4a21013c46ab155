/** The parameters of one generation job, their defaults (FramePack's) and their validation. */
import { GeneratorError } from './errors.js';
import type { LoopMode } from './section-loop.js';

export interface GenerateParams {
  /** Input image path (PNG/JPEG). Without one the job is text-to-video. */
  image?: string;
  /** End frame (original mode only). */
  endImage?: string;
  /** 0..1: how strongly the end frame's latent is imposed (1 = as encoded). */
  endStrength: number;
  prompt: string;
  negativePrompt: string;
  seconds: number;
  mode: LoopMode;
  steps: number;
  /** Distilled guidance scale (FramePack's `gs`). */
  gs: number;
  /** Real CFG scale; 1 disables the negative pass. */
  cfg: number;
  /** Guidance rescale. */
  rs: number;
  seed: number;
  /** Latent frames per section. */
  window: number;
  /** Bucket resolution (the image is fitted to the nearest bucket of about resolution x resolution pixels). */
  resolution: number;
  cache: 'none' | 'teacache' | 'magcache';
  teacacheThreshold: number;
  magcacheThreshold: number;
  magcacheMaxSkips: number;
  magcacheRetention: number;
  /** x264 CRF of the MP4. */
  crf: number;
  /** Timestamped prompts: width of the blend at each prompt change, in sections (0 = switch at once). */
  promptBlendSections: number;
}

export const DEFAULTS: Omit<GenerateParams, 'prompt'> = {
  endStrength: 1,
  negativePrompt: '',
  seconds: 5,
  mode: 'original',
  steps: 25,
  gs: 10,
  cfg: 1,
  rs: 0,
  seed: 31337,
  window: 9,
  resolution: 640,
  cache: 'none',
  teacacheThreshold: 0.15,
  magcacheThreshold: 0.1,
  magcacheMaxSkips: 2,
  magcacheRetention: 0.25,
  crf: 16,
  promptBlendSections: 2,
};

function num(v: unknown, name: string, check: (n: number) => boolean, rule: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || !check(n)) throw new GeneratorError(`${name} must be ${rule} (got ${JSON.stringify(v)})`, 'BAD_PARAMS', { param: name });
  return n;
}
const int = (v: unknown, name: string, lo: number, hi: number) =>
  num(v, name, (n) => Number.isInteger(n) && n >= lo && n <= hi, `an integer in [${lo}, ${hi}]`);
const real = (v: unknown, name: string, lo: number, hi: number, loOpen = false) =>
  num(v, name, (n) => (loOpen ? n > lo : n >= lo) && n <= hi, `a number in ${loOpen ? '(' : '['}${lo}, ${hi}]`);

/** Fill defaults and check every field; throws GeneratorError('BAD_PARAMS') naming the first bad one. */
export function resolveParams(input: Partial<GenerateParams> & { prompt?: string }): GenerateParams {
  const p = { ...DEFAULTS, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as GenerateParams;
  if (typeof p.prompt !== 'string') throw new GeneratorError('a prompt is required (--prompt "...")', 'BAD_PARAMS', { param: 'prompt' });
  if (typeof p.negativePrompt !== 'string') throw new GeneratorError('negativePrompt must be a string', 'BAD_PARAMS', { param: 'negativePrompt' });
  if (p.mode !== 'original' && p.mode !== 'f1') throw new GeneratorError(`mode must be 'original' or 'f1' (got ${JSON.stringify(p.mode)})`, 'BAD_PARAMS', { param: 'mode' });
  if (!['none', 'teacache', 'magcache'].includes(p.cache)) throw new GeneratorError(`cache must be none, teacache or magcache (got ${JSON.stringify(p.cache)})`, 'BAD_PARAMS', { param: 'cache' });
  p.seconds = real(p.seconds, 'seconds', 0, 600, true);
  p.steps = int(p.steps, 'steps', 1, 200);
  p.gs = real(p.gs, 'gs', 0, 100);
  p.cfg = real(p.cfg, 'cfg', 1, 100);
  p.rs = real(p.rs, 'rs', 0, 1);
  p.seed = int(p.seed, 'seed', 0, 2 ** 53 - 1);
  p.window = int(p.window, 'window', 1, 33);
  p.resolution = int(p.resolution, 'resolution', 64, 2048);
  p.endStrength = real(p.endStrength, 'endStrength', 0, 1, true);
  p.teacacheThreshold = real(p.teacacheThreshold, 'teacacheThreshold', 0, 10);
  p.magcacheThreshold = real(p.magcacheThreshold, 'magcacheThreshold', 0, 10);
  p.magcacheMaxSkips = int(p.magcacheMaxSkips, 'magcacheMaxSkips', 0, 100);
  p.magcacheRetention = real(p.magcacheRetention, 'magcacheRetention', 0, 1);
  p.crf = int(p.crf, 'crf', 0, 51);
  p.promptBlendSections = int(p.promptBlendSections, 'promptBlendSections', 0, 100);
  if (p.endImage && p.mode !== 'original') throw new GeneratorError('an end image is only supported in the original (inverted) mode: its first section generates the end of the video', 'BAD_PARAMS', { param: 'endImage' });
  if (p.endImage && !p.image) throw new GeneratorError('an end image needs a start image (--image)', 'BAD_PARAMS', { param: 'endImage' });
  return p;
}
