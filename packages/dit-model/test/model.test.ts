import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import {
  dualBlockModulatedInput, DiTInputError, HunyuanVideoTransformer3DModelPacked, type PackedDiTInputs,
  type StepSkipContext, type StepSkipHook,
} from '@framepack/dit-model';
import { maxAbsDiff, rand, randomWeights, tinyConfig } from './helpers.js';

const cfg = tinyConfig();
const model = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, randomWeights(cfg));
const L = 6;

/** Inputs for B rows on an 8x8 latent, 2 noisy frames, with every clean-latent group. */
function inputs(B: number, seed: number, mask: number[][]): PackedDiTInputs {
  const idx = (rows: number[][]) => T.tensor(rows.flat(), [rows.length, rows[0].length], { dtype: 'i64' });
  return {
    hiddenStates: rand([B, 16, 2, 8, 8], seed),
    timestep: T.tensor(Array.from({ length: B }, (_, b) => 700 + 50 * b), [B]),
    guidance: T.full([B], 6000),
    encoderHiddenStates: rand([B, L, 12], seed + 1),
    encoderAttentionMask: T.ne(T.tensor(mask.flat(), [B, L]), 0),
    pooledProjections: rand([B, 6], seed + 2),
    imageEmbeddings: rand([B, 3, 10], seed + 3),
    latentIndices: idx(Array.from({ length: B }, () => [4, 5])),
    cleanLatents: rand([B, 16, 2, 8, 8], seed + 4),
    cleanLatentIndices: idx(Array.from({ length: B }, () => [0, 6])),
    cleanLatents2x: rand([B, 16, 2, 8, 8], seed + 5),
    cleanLatentIndices2x: idx(Array.from({ length: B }, () => [7, 8])),
    cleanLatents4x: rand([B, 16, 5, 8, 8], seed + 6),
    cleanLatentIndices4x: idx(Array.from({ length: B }, () => [9, 10, 11, 12, 13])),
  };
}
/** Row b of batched inputs (a batch-1 view of each tensor). */
function row(inp: PackedDiTInputs, b: number): PackedDiTInputs {
  const out: Record<string, T.Tensor> = {};
  for (const [k, t] of Object.entries(inp)) if (t) out[k] = t.shape[0] === 1 ? t : T.slice(t, 0, b, b + 1);
  return out as unknown as PackedDiTInputs;
}

describe('packed DiT forward', () => {
  it('returns the f32 flow prediction of the noisy window and frees every temporary', () => {
    const inp = inputs(1, 10, [[1, 1, 1, 1, 0, 0]]);
    const before = T.memoryStats('cpu').currentBytes;
    const out = model.forward(inp);
    expect(out.shape).toEqual([1, 16, 2, 8, 8]);
    expect(out.dtype).toBe('f32');
    expect(out.toFloat32Array().every(Number.isFinite)).toBe(true);
    expect(T.memoryStats('cpu').currentBytes - before).toBe(out.numel * 4);
    out.dispose();
  });

  it('peak memory stays at a few activations (temporaries are freed block by block)', () => {
    const c = tinyConfig({ num_attention_heads: 2, attention_head_dim: 32, rope_axes_dim: [8, 12, 12], num_layers: 2, num_single_layers: 2 });
    const m = HunyuanVideoTransformer3DModelPacked.fromWeights(c, randomWeights(c));
    const inp = { ...inputs(1, 15, [[1, 1, 1, 1, 1, 1]]), hiddenStates: rand([1, 16, 2, 16, 16], 16), latentIndices: null, cleanLatents: null, cleanLatentIndices: null, cleanLatents2x: null, cleanLatentIndices2x: null, cleanLatents4x: null, cleanLatentIndices4x: null };
    const base = T.memoryStats('cpu').currentBytes;
    T.resetPeakMemory('cpu');
    const out = m.forward(inp);
    const activation = (2 * 8 * 8 + 3 + L) * 64 * 4; // one (tokens x hidden) f32 tensor
    const peak = (T.memoryStats('cpu').peakBytes - base) / activation;
    // the 4x-wide MLP alone is 4 activations (8 around its GELU); everything else is a handful more
    expect(peak).toBeLessThan(20);
    out.dispose();
    m.dispose();
  });

  it('a forward that fails half-way (here: in a debug callback) leaks nothing', () => {
    const inp = inputs(1, 12, [[1, 1, 1, 0, 0, 0]]);
    const before = T.memoryStats('cpu').currentBytes;
    expect(() =>
      model.forward(inp, {
        debug: (name) => {
          if (name === 'single_transformer_blocks.0.context') throw new Error('stop');
        },
      }),
    ).toThrow('stop');
    expect(T.memoryStats('cpu').currentBytes).toBe(before);
  });

  it('batch 1: a mask with holes equals the same text with the padded tokens removed', () => {
    const inp = inputs(1, 20, [[1, 0, 1, 1, 0, 1]]);
    const keep = T.tensor([0, 2, 3, 5], [4], { dtype: 'i32' });
    const compact = { ...inp, encoderHiddenStates: T.indexSelect(inp.encoderHiddenStates, 1, keep), encoderAttentionMask: T.ne(T.ones([1, 4]), 0) };
    expect(maxAbsDiff(model.forward(inp), model.forward(compact))).toBeLessThan(1e-5);
    // the mask matters: all tokens valid gives another result
    expect(maxAbsDiff(model.forward(inp), model.forward({ ...inp, encoderAttentionMask: T.ne(T.ones([1, L]), 0) }))).toBeGreaterThan(1e-4);
    // and the padded tokens' values do not matter
    const noisy = { ...inp, encoderHiddenStates: T.add(inp.encoderHiddenStates, T.mul(T.cast(T.unsqueeze(T.eq(inp.encoderAttentionMask!, T.full([], 0, { dtype: 'bool' })), 2), 'f32'), 100)) };
    expect(maxAbsDiff(model.forward(inp), model.forward(noisy))).toBeLessThan(1e-5);
  });

  it('batch > 1: every row equals that row run alone (different text lengths, no valid text at all)', () => {
    const masks = [[1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]];
    const inp = inputs(3, 30, masks);
    const out = model.forward(inp);
    for (let b = 0; b < 3; b++) {
      const alone = model.forward(row(inp, b));
      expect(maxAbsDiff(T.slice(out, 0, b, b + 1), alone), `row ${b}`).toBeLessThan(2e-5);
    }
  });

  it('batch > 1 with different frame positions per row: each row as if alone', () => {
    const inp = inputs(2, 35, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]);
    inp.latentIndices = T.tensor([4, 5, 9, 11], [2, 2], { dtype: 'i64' });
    inp.cleanLatentIndices4x = T.tensor([9, 10, 11, 12, 13, 1, 2, 3, 4, 5], [2, 5], { dtype: 'i64' });
    const out = model.forward(inp);
    for (let b = 0; b < 2; b++) expect(maxAbsDiff(T.slice(out, 0, b, b + 1), model.forward(row(inp, b))), `row ${b}`).toBeLessThan(2e-5);
  });

  it('batch-1 clean latents, indices and image tokens are shared by every row', () => {
    const inp = inputs(2, 40, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]]);
    const shared: PackedDiTInputs = { ...inp };
    for (const k of ['latentIndices', 'cleanLatents', 'cleanLatentIndices', 'cleanLatents2x', 'cleanLatentIndices2x', 'cleanLatents4x', 'cleanLatentIndices4x', 'imageEmbeddings'] as const) {
      shared[k] = T.slice(inp[k]!, 0, 0, 1);
      inp[k] = T.cat([shared[k]!, shared[k]!], 0);
    }
    expect(maxAbsDiff(model.forward(shared), model.forward(inp))).toBeLessThan(1e-6);
  });

  it('without clean latents the default frame positions are 0..T-1', () => {
    const base = inputs(1, 50, [[1, 1, 1, 1, 1, 1]]);
    const plain = { ...base, cleanLatents: null, cleanLatentIndices: null, cleanLatents2x: null, cleanLatentIndices2x: null, cleanLatents4x: null, cleanLatentIndices4x: null };
    const withIdx = { ...plain, latentIndices: T.tensor([0, 1], [1, 2], { dtype: 'i64' }) };
    const shifted = { ...plain, latentIndices: T.tensor([3, 4], [1, 2], { dtype: 'i64' }) };
    expect(maxAbsDiff(model.forward({ ...plain, latentIndices: null }), model.forward(withIdx))).toBe(0);
    expect(maxAbsDiff(model.forward(plain), model.forward(shifted))).toBeGreaterThan(1e-4);
  });

  it('step-skip hook: called once before the blocks; record gets the stack input/output; a skip feeds applySkip to the head', () => {
    const inp = inputs(1, 60, [[1, 1, 1, 1, 0, 0]]);
    const seen: string[] = [];
    const packed: T.Tensor[] = [];
    let lastBlock: T.Tensor | null = null;
    const debug = (name: string, t: T.Tensor) => {
      if (name === 'packed_hidden_states') packed.push(T.keep(T.clone(t)));
      if (name === 'single_transformer_blocks.0') lastBlock = T.keep(T.clone(t));
    };
    let residual: T.Tensor | null = null;
    let ctxSeen: StepSkipContext | null = null;
    let modErr = Infinity;
    const hook = (skip: boolean): StepSkipHook => ({
      shouldSkip(ctx) {
        seen.push(`should ${ctx.step}/${ctx.totalSteps}`);
        ctxSeen = ctx;
        expect(ctx.modulatedInput.shape).toEqual(ctx.hidden.shape);
        modErr = maxAbsDiff(ctx.hidden, packed[packed.length - 1]);
        return skip;
      },
      applySkip(hidden) {
        seen.push('apply');
        return T.add(hidden, residual!);
      },
      record(before, after) {
        seen.push('record');
        expect(maxAbsDiff(before, packed[packed.length - 1])).toBe(0);
        expect(maxAbsDiff(after, lastBlock!)).toBe(0);
        residual?.dispose();
        residual = T.keep(T.sub(after, before));
      },
    });
    const full = model.forward(inp, { stepSkip: hook(false), step: 0, totalSteps: 2, debug });
    expect(seen).toEqual(['should 0/2', 'record']);
    expect(modErr).toBe(0);
    expect(ctxSeen!.hidden.disposed).toBe(true); // handed-out tensors are the forward's
    expect(residual!.disposed).toBe(false); // what the hook kept survives
    const skipped = model.forward(inp, { stepSkip: hook(true), step: 1, totalSteps: 2 });
    expect(seen).toEqual(['should 0/2', 'record', 'should 1/2', 'apply']);
    expect(maxAbsDiff(full, skipped)).toBeLessThan(1e-5);
  });

  it('the hook sees block 0 norm1 modulated by temb', () => {
    const inp = inputs(1, 70, [[1, 1, 1, 1, 1, 1]]);
    let mod: T.Tensor | null = null;
    const kept: Record<string, T.Tensor> = {};
    model.forward(inp, {
      stepSkip: {
        shouldSkip(ctx) {
          mod = T.keep(T.clone(ctx.modulatedInput));
          return false;
        },
        applySkip: (h) => h,
        record() {},
      },
      debug(name, t) {
        if (name === 'temb' || name === 'packed_hidden_states') kept[name] = T.keep(T.clone(t));
      },
    });
    const expected = dualBlockModulatedInput(model.weights.root.at('transformer_blocks.0'), kept.packed_hidden_states, kept.temb);
    expect(maxAbsDiff(mod!, expected)).toBe(0);
    // and it is not just the normalised input: the modulation moved it
    expect(maxAbsDiff(mod!, T.layerNorm(kept.packed_hidden_states, null, null, 1e-6))).toBeGreaterThan(1e-3);
  });

  it('rejects bad inputs with one clear error', () => {
    const inp = inputs(1, 80, [[1, 1, 1, 1, 1, 1]]);
    const err = (over: Partial<PackedDiTInputs>) => {
      try {
        model.forward({ ...inp, ...over });
      } catch (e) {
        expect(e).toBeInstanceOf(DiTInputError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err({ hiddenStates: rand([1, 8, 2, 8, 8]) })).toContain('8 channels');
    expect(err({ hiddenStates: rand([1, 16, 2, 7, 8]) })).toContain('divide');
    expect(err({ cleanLatentIndices: null })).toContain('cleanLatentIndices');
    expect(err({ imageEmbeddings: null })).toContain('imageEmbeddings is required');
    expect(err({ pooledProjections: rand([2, 6]) })).toContain('batch 2');
    expect(err({ encoderHiddenStates: rand([1, L, 11]) })).toContain('encoderHiddenStates');
    expect(err({ cleanLatents4x: rand([1, 16, 5, 8, 6]) })).toContain('cleanLatents4x');
    expect(err({ cleanLatentIndices2x: T.tensor([1, 2, 3], [1, 3], { dtype: 'i64' }) })).toContain('cleanLatentIndices2x');
    expect(err({ timestep: T.tensor([1, 2], [2]) })).toContain('timestep');
    const noImg = tinyConfig({ has_image_proj: false, has_clean_x_embedder: false });
    const m2 = HunyuanVideoTransformer3DModelPacked.fromWeights(noImg, randomWeights(noImg));
    const plain = { ...inp, imageEmbeddings: null, cleanLatents: null, cleanLatentIndices: null, cleanLatents2x: null, cleanLatentIndices2x: null, cleanLatents4x: null, cleanLatentIndices4x: null };
    expect(m2.forward(plain).shape).toEqual([1, 16, 2, 8, 8]);
    expect(() => m2.forward({ ...plain, encoderAttentionMask: T.ne(T.zeros([1, L]), 0) })).toThrow(/context is empty/);
    expect(() => m2.forward({ ...plain, cleanLatents: inp.cleanLatents, cleanLatentIndices: inp.cleanLatentIndices })).toThrow(/no clean-latent embedder/);
    m2.dispose();
  });
});
