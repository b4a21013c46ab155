import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { PromptBlenderError } from './errors.js';
import type { PromptSchedule } from './parse.js';
import { type BlendOptions, type PromptWeight, type SectionWeights, sectionWeights } from './sections.js';

/** What the text encoders give for one prompt (FramePack: LLaMA hidden_states[-3] cropped/padded + CLIP-L pooler). */
export interface PromptEmbedding {
  /** (1, L, D) float. */
  llamaVec: Tensor;
  /** (1, L) bool, true = real token. */
  llamaMask: Tensor;
  /** (1, Dp) float. */
  clipPooler: Tensor;
}

/** Encodes one prompt. Called once per unique prompt text per `sectionConditioning` call. */
export type PromptEncoder = (prompt: string) => Promise<PromptEmbedding>;

/** The conditioning of one section: where it lies, which prompts it mixes, and the mixed tensors. */
export interface SectionConditioning extends SectionWeights, PromptEmbedding {}

/**
 * Per section, in generation order, the blended {llamaVec, llamaMask, clipPooler} (see `sectionWeights` for
 * which prompts condition which section, and README.md).
 *
 * - Every prompt that gets a non-zero weight somewhere is encoded exactly once, in video-time order.
 * - Embeddings of different lengths are padded to the longest one (L_max over the prompts used): vectors with
 *   zeros, masks with false. Positions a prompt's own mask marks as padding are zeroed too, so whatever the
 *   encoder left there never leaks into a mix.
 * - A mixed section gets vec = sum_i w_i vec_i and pooler = sum_i w_i pooler_i (computed in f32, returned in
 *   the encoder's dtype) and mask = OR of the masks: a token is attended if any mixed prompt has it.
 * - A section with a single prompt gets that prompt's padded tensors unchanged.
 * - Sections with the same weights share the same tensor objects; free everything once with
 *   `disposeSectionConditioning`. The tensors the encoder returned are read, never disposed.
 */
export async function sectionConditioning(schedule: PromptSchedule, opts: BlendOptions, encode: PromptEncoder): Promise<SectionConditioning[]> {
  if (typeof encode !== 'function') throw new PromptBlenderError('sectionConditioning needs an encode(prompt) function', 'E_OPTIONS');
  const plan = sectionWeights(schedule, opts);
  const used = new Set(plan.flatMap((s) => s.weights.map((w) => w.prompt)));
  const order = schedule.prompts.filter((p) => used.has(p));

  const encoded = new Map<string, PromptEmbedding>();
  for (const p of order) {
    const e = await encode(p);
    checkEmbedding(e, p);
    encoded.set(p, e);
  }
  const first = encoded.get(order[0])!;
  for (const [p, e] of encoded) checkCompatible(first, e, order[0], p);

  const lMax = Math.max(...[...encoded.values()].map((e) => e.llamaVec.shape[1]));
  const padded = new Map<string, PromptEmbedding>();
  const mixes = new Map<string, PromptEmbedding>();
  try {
    for (const [p, e] of encoded) padded.set(p, T.tidy(() => padEmbedding(e, lMax)));
    const out = plan.map((s) => {
      const key = mixKey(s.weights);
      let m = mixes.get(key);
      if (!m) {
        m = s.weights.length === 1 ? padded.get(s.weights[0].prompt)! : T.tidy(() => mix(s.weights, padded));
        mixes.set(key, m);
      }
      return { ...s, ...m };
    });
    // padded prompts that no section uses on their own were only mix inputs
    const kept = new Set([...mixes.values()]);
    for (const e of padded.values()) if (!kept.has(e)) T.disposeAll(e);
    return out;
  } catch (err) {
    for (const e of new Set([...padded.values(), ...mixes.values()])) T.disposeAll(e);
    throw err;
  }
}

/** Dispose the tensors of a `sectionConditioning` result (each shared tensor once). */
export function disposeSectionConditioning(sections: readonly SectionConditioning[]): void {
  const seen = new Set<Tensor>();
  for (const s of sections) for (const t of [s.llamaVec, s.llamaMask, s.clipPooler]) if (!seen.has(t)) (seen.add(t), t.dispose());
}

const mixKey = (ws: readonly PromptWeight[]) => JSON.stringify(ws.map((w) => [w.prompt, w.weight]));

function padEmbedding(e: PromptEmbedding, lMax: number): PromptEmbedding {
  const l = e.llamaVec.shape[1];
  const mask3 = T.reshape(e.llamaMask, [1, l, 1]);
  const vec = T.where(mask3, e.llamaVec, T.zeros([1, 1, 1], { dtype: e.llamaVec.dtype, device: e.llamaVec.device }));
  return {
    llamaVec: T.pad(vec, [[0, lMax - l], [0, 0]]),
    llamaMask: T.pad(e.llamaMask, [[0, lMax - l]]),
    clipPooler: T.clone(e.clipPooler),
  };
}

function mix(ws: readonly PromptWeight[], padded: ReadonlyMap<string, PromptEmbedding>): PromptEmbedding {
  const parts = ws.map((w) => ({ w: w.weight, e: padded.get(w.prompt)! }));
  const vecType = parts[0].e.llamaVec.dtype;
  const poolType = parts[0].e.clipPooler.dtype;
  const weighted = (pick: (e: PromptEmbedding) => Tensor) =>
    parts.map(({ w, e }) => T.mul(T.cast(pick(e), 'f32'), w)).reduce((a, b) => T.add(a, b));
  const anyMask = parts.map(({ e }) => T.cast(e.llamaMask, 'f32')).reduce((a, b) => T.maximum(a, b));
  return {
    llamaVec: T.cast(weighted((e) => e.llamaVec), vecType),
    llamaMask: T.gt(anyMask, 0),
    clipPooler: T.cast(weighted((e) => e.clipPooler), poolType),
  };
}

const isFloat = (t: Tensor) => t.dtype === 'f32' || t.dtype === 'f16' || t.dtype === 'bf16';

function checkEmbedding(e: PromptEmbedding | undefined, prompt: string): void {
  const bad = (what: string) => new PromptBlenderError(`encode(${JSON.stringify(clip(prompt))}) returned ${what}`, 'E_ENCODING');
  if (!e || typeof e !== 'object' || !e.llamaVec || !e.llamaMask || !e.clipPooler) throw bad('an object without llamaVec, llamaMask and clipPooler tensors');
  const { llamaVec: v, llamaMask: m, clipPooler: p } = e;
  if (v.ndim !== 3 || v.shape[0] !== 1 || !isFloat(v)) throw bad(`llamaVec ${v.dtype} [${v.shape}]; expected a float (1, L, D) tensor`);
  if (m.dtype !== 'bool' || m.ndim !== 2 || m.shape[0] !== 1 || m.shape[1] !== v.shape[1]) throw bad(`llamaMask ${m.dtype} [${m.shape}]; expected a bool (1, ${v.shape[1]}) tensor`);
  if (p.ndim !== 2 || p.shape[0] !== 1 || !isFloat(p)) throw bad(`clipPooler ${p.dtype} [${p.shape}]; expected a float (1, Dp) tensor`);
  if (v.device !== m.device || v.device !== p.device) throw bad(`tensors on different devices (${v.device}, ${m.device}, ${p.device})`);
}

function checkCompatible(a: PromptEmbedding, b: PromptEmbedding, pa: string, pb: string): void {
  const same = a.llamaVec.shape[2] === b.llamaVec.shape[2] && a.clipPooler.shape[1] === b.clipPooler.shape[1] && a.llamaVec.dtype === b.llamaVec.dtype && a.clipPooler.dtype === b.clipPooler.dtype && a.llamaVec.device === b.llamaVec.device;
  if (!same) {
    throw new PromptBlenderError(
      `encodings of ${JSON.stringify(clip(pa))} (${a.llamaVec.dtype} [${a.llamaVec.shape}], pooler [${a.clipPooler.shape}], ${a.llamaVec.device}) and ${JSON.stringify(clip(pb))} (${b.llamaVec.dtype} [${b.llamaVec.shape}], pooler [${b.clipPooler.shape}], ${b.llamaVec.device}) cannot be mixed: width, dtype and device must agree`,
      'E_ENCODING',
    );
  }
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
