import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import {
  PromptBlenderError,
  disposeSectionConditioning,
  parsePromptSchedule,
  sectionConditioning,
  type BlendOptions,
  type PromptEmbedding,
} from '@framepack/prompt-blender';

const D = 3;
const DP = 2;

/** Plain-array encoding of a prompt: length = words + 1, distinct values, and junk (not zeros) in one padded slot. */
function plain(prompt: string) {
  const n = prompt.split(/\s+/).filter(Boolean).length + 1;
  const h = [...prompt].reduce((a, c) => (a * 31 + c.charCodeAt(0)) % 997, 7);
  const len = n + 1; // one padding position the mask marks false
  const vec = Array.from({ length: len * D }, (_, i) => (i < n * D ? Math.sin(h + i) : 100 + i));
  const mask = Array.from({ length: len }, (_, i) => i < n);
  const pooler = Array.from({ length: DP }, (_, i) => Math.cos(h * (i + 1)));
  return { len, n, vec, mask, pooler };
}

function fakeEncoder() {
  const calls: string[] = [];
  const made: PromptEmbedding[] = [];
  const encode = async (prompt: string): Promise<PromptEmbedding> => {
    calls.push(prompt);
    await new Promise((r) => setTimeout(r, 0));
    const p = plain(prompt);
    const e = {
      llamaVec: T.tensor(p.vec, [1, p.len, D]),
      llamaMask: T.tensor(p.mask.map(Number), [1, p.len], { dtype: 'bool' }),
      clipPooler: T.tensor(p.pooler, [1, DP]),
    };
    made.push(e);
    return e;
  };
  return { encode, calls, made };
}

const layout = (o: Partial<BlendOptions> = {}): BlendOptions => ({ mode: 'original', totalSections: 6, latentWindowSize: 9, fps: 30, blendSections: 4, ...o });

describe('sectionConditioning', () => {
  it('encodes each prompt once, pads to the longest, mixes vec/pooler linearly and ORs the masks', async () => {
    const s = parsePromptSchedule('a cat\n[1s: a cat sits] [3.5s: the cat stands up slowly]\n[5s-6s: a cat sits]', { videoSeconds: 7.2 });
    const { encode, calls, made } = fakeEncoder();
    const out = await sectionConditioning(s, layout(), encode);
    expect(calls.sort()).toEqual(['a cat', 'a cat sits', 'the cat stands up slowly']);
    const lMax = Math.max(...calls.map((c) => plain(c).len));
    expect(out).toHaveLength(6);
    expect(out.map((o) => o.videoIndex)).toEqual([5, 4, 3, 2, 1, 0]);
    let mixed = 0;
    for (const sec of out) {
      expect(sec.llamaVec.shape).toEqual([1, lMax, D]);
      expect(sec.llamaMask.shape).toEqual([1, lMax]);
      expect(sec.llamaMask.dtype).toBe('bool');
      expect(sec.clipPooler.shape).toEqual([1, DP]);
      // independent oracle on plain arrays: zero-padded, masked-out junk dropped, weighted sum, union mask
      const vec = new Array(lMax * D).fill(0);
      const mask = new Array(lMax).fill(false);
      const pool = new Array(DP).fill(0);
      for (const { prompt, weight } of sec.weights) {
        const p = plain(prompt);
        for (let i = 0; i < p.n * D; i++) vec[i] += weight * p.vec[i];
        for (let i = 0; i < p.n; i++) mask[i] = true;
        for (let i = 0; i < DP; i++) pool[i] += weight * p.pooler[i];
      }
      const gv = sec.llamaVec.toFloat32Array();
      vec.forEach((v, i) => expect(gv[i]).toBeCloseTo(v, 6));
      expect(Array.from(sec.llamaMask.toArray() as ArrayLike<number | boolean>, Boolean)).toEqual(mask);
      const gp = sec.clipPooler.toFloat32Array();
      pool.forEach((v, i) => expect(gp[i]).toBeCloseTo(v, 6));
      if (sec.weights.length > 1) mixed++;
    }
    expect(mixed).toBeGreaterThan(1);
    disposeSectionConditioning(out);
    for (const e of made) T.disposeAll(e);
  });

  it('an unblended section is exactly its prompt (padded); equal mixes share tensors; dispose frees everything once', async () => {
    const before = T.memoryStats('cpu');
    const s = parsePromptSchedule('[0s: one] [2.4s: two words here]', { videoSeconds: 4.8 });
    const { encode, made } = fakeEncoder();
    const out = await sectionConditioning(s, layout({ totalSections: 4, blendSections: 0, mode: 'f1' }), encode);
    expect(out.map((o) => o.weights.map((w) => w.prompt).join())).toEqual(['one', 'one', 'two words here', 'two words here']);
    expect(out[0].llamaVec).toBe(out[1].llamaVec);
    expect(out[2].clipPooler).toBe(out[3].clipPooler);
    const one = plain('one');
    const got = out[0].llamaVec.toFloat32Array();
    const lMax = plain('two words here').len;
    for (let i = 0; i < lMax * D; i++) expect(got[i]).toBe(i < one.n * D ? Math.fround(one.vec[i]) : 0);
    expect(out[0].clipPooler.toFloat32Array()).toEqual(Float32Array.from(one.pooler));
    disposeSectionConditioning(out);
    for (const e of made) T.disposeAll(e);
    const after = T.memoryStats('cpu');
    expect([after.allocations, after.currentBytes]).toEqual([before.allocations, before.currentBytes]);
  });

  it('keeps the encoder dtype (bf16 in, bf16 out; mixing in f32)', async () => {
    const s = parsePromptSchedule('[0s: a] [2.4s: b c]', { videoSeconds: 4.8 });
    const enc = fakeEncoder();
    const encode = async (p: string) => {
      const e = await enc.encode(p);
      return { ...e, llamaVec: T.cast(e.llamaVec, 'bf16'), clipPooler: T.cast(e.clipPooler, 'bf16') };
    };
    const out = await sectionConditioning(s, layout({ totalSections: 4, blendSections: 2, mode: 'f1' }), encode);
    expect(out.every((o) => o.llamaVec.dtype === 'bf16' && o.clipPooler.dtype === 'bf16')).toBe(true);
    expect(out.some((o) => o.weights.length === 2)).toBe(true);
    disposeSectionConditioning(out);
  });

  it('rejects unusable encodings with a typed error', async () => {
    const s = parsePromptSchedule('[0s: a] [2.4s: b]', { videoSeconds: 4.8 });
    const good = fakeEncoder().encode;
    const o = layout({ totalSections: 4 });
    const bad = (f: (e: PromptEmbedding) => PromptEmbedding) => async (p: string) => f(await good(p));
    await expect(sectionConditioning(s, o, bad((e) => ({ ...e, llamaMask: T.cast(e.llamaMask, 'f32') })))).rejects.toThrow(/llamaMask f32/);
    await expect(sectionConditioning(s, o, bad((e) => ({ ...e, llamaVec: T.reshape(e.llamaVec, [e.llamaVec.shape[1], D]) })))).rejects.toThrow(PromptBlenderError);
    let n = 0;
    const widths = async (p: string) => {
      const e = await good(p);
      return n++ === 0 ? e : { ...e, clipPooler: T.zeros([1, DP + 1]) };
    };
    await expect(sectionConditioning(s, o, widths)).rejects.toThrow(/cannot be mixed/);
    await expect(sectionConditioning(s, o, 'x' as never)).rejects.toThrow(/encode/);
  });
});
