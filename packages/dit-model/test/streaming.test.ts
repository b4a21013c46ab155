import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import { DiTWeightsError, HunyuanVideoTransformer3DModelPacked, isBlockKey, type PackedDiTInputs, type StepSkipHook } from '@framepack/dit-model';
import { maxAbsDiff, rand, randomWeights, tinyConfig } from './helpers.js';

const cfg = tinyConfig({ num_layers: 2, num_single_layers: 3 });
const weights = randomWeights(cfg, 21);
const resident = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights);

function inputs(seed: number): PackedDiTInputs {
  return {
    hiddenStates: rand([1, 16, 2, 8, 8], seed),
    timestep: T.tensor([640], [1]),
    guidance: T.tensor([6000], [1]),
    encoderHiddenStates: rand([1, 5, 12], seed + 1),
    encoderAttentionMask: T.ne(T.tensor([1, 1, 1, 0, 0], [1, 5]), 0),
    pooledProjections: rand([1, 6], seed + 2),
    imageEmbeddings: rand([1, 3, 10], seed + 3),
    latentIndices: T.tensor([3, 4], [1, 2], { dtype: 'i64' }),
    cleanLatents: rand([1, 16, 2, 8, 8], seed + 4),
    cleanLatentIndices: T.tensor([0, 5], [1, 2], { dtype: 'i64' }),
  };
}

describe('block streaming', () => {
  it('gives exactly the resident result with any number of slots, forward after forward', () => {
    const inp = [inputs(1), inputs(2)];
    const ref = inp.map((x) => resident.forward(x));
    for (const slots of [1, 2, 3, 5, 8]) {
      const m = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { slots } });
      expect(m.streamer!.slots).toBe(Math.min(slots, 5));
      for (let r = 0; r < 3; r++) for (let i = 0; i < 2; i++) expect(maxAbsDiff(m.forward(inp[i]), ref[i]), `slots ${slots} run ${r}`).toBe(0);
      // with a slot per block nothing is copied again after the first forward; else each forward copies
      // every block that is not still in its slot from the previous one
      if (slots >= 5) expect(m.streamer!.loads).toBe(5);
      else {
        expect(m.streamer!.loads).toBeGreaterThan(6 * (5 - slots));
        expect(m.streamer!.loads).toBeLessThanOrEqual(6 * 5 + slots); // + the next forward's first blocks, prefetched
      }
      m.dispose();
    }
  });

  it('keeps only the slots on the device: the blocks live in host buffers', () => {
    const d = mkdtempSync(join(tmpdir(), 'dit-mem-'));
    const file = join(d, 'w.safetensors');
    writeSafetensors(file, weights);
    const held = (make: () => HunyuanVideoTransformer3DModelPacked) => {
      const before = T.memoryStats('cpu').currentBytes;
      const m = make();
      return { m, bytes: T.memoryStats('cpu').currentBytes - before };
    };
    const res = held(() => HunyuanVideoTransformer3DModelPacked.load(file, { config: cfg }));
    const str = held(() => HunyuanVideoTransformer3DModelPacked.load(file, { config: cfg, streamBlocks: { slots: 2 } }));
    let blocks = 0;
    for (const [k, t] of res.m.weights.tensors) if (isBlockKey(k)) blocks += t.numel * 4;
    expect(str.m.streamer!.hostBytes).toBe(blocks);
    expect(str.m.streamer!.deviceBytes).toBeLessThan(blocks);
    expect(res.bytes - str.bytes).toBe(blocks - str.m.streamer!.deviceBytes);
    expect([...str.m.weights.tensors.keys()].some(isBlockKey)).toBe(false);
    res.m.dispose();
    str.m.dispose();
  });

  it('keeps the first residentBlocks blocks on the device and streams the rest, with the same result', () => {
    const inp = [inputs(6), inputs(7)];
    const ref = inp.map((x) => resident.forward(x));
    for (const residentBlocks of [0, 2, 4, 5]) {
      const m = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { slots: 2, residentBlocks } });
      const names = ['transformer_blocks.0', 'transformer_blocks.1', 'single_transformer_blocks.0', 'single_transformer_blocks.1', 'single_transformer_blocks.2'];
      expect(m.streamer!.order).toEqual(names.slice(residentBlocks));
      for (const n of names.slice(0, residentBlocks)) expect(m.weights.tensors.has(`${n}.attn.to_q.weight`)).toBe(true);
      for (const n of names.slice(residentBlocks)) expect(m.weights.tensors.has(`${n}.attn.to_q.weight`)).toBe(false);
      for (let r = 0; r < 2; r++) for (let i = 0; i < 2; i++) expect(maxAbsDiff(m.forward(inp[i]), ref[i]), `resident ${residentBlocks}`).toBe(0);
      m.dispose();
    }
    expect(() => HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { residentBlocks: 6 } })).toThrow(/residentBlocks/);
  });

  for (const weights8bit of ['int8', 'fp8'] as const)
    for (const dtype of ['f32', 'bf16'] as const)
      it(`streams ${weights8bit} blocks (${dtype}): exactly the resident model whose streamed matrices are dequantize(quantize(w))`, () => {
        const residentBlocks = 1;
        // the reference: the same checkpoint with every streamed block's 2-D matrices replaced by their 8-bit round trip
        const streamedBlock = (k: string) => isBlockKey(k) && !k.startsWith('transformer_blocks.0.');
        const ref8: Record<string, T.Tensor> = {};
        let replaced = 0;
        for (const [k, w] of Object.entries(weights)) {
          const typed = T.cast(w, dtype);
          if (streamedBlock(k) && T.isQuantizable8(w.shape)) {
            ref8[k] = T.roundTrip8(typed, weights8bit);
            typed.dispose();
            replaced++;
          } else ref8[k] = typed;
        }
        expect(replaced).toBeGreaterThan(20);
        const ref = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, ref8, { dtype });
        const inp = [inputs(8), inputs(9)];
        const want = inp.map((x) => ref.forward(x));
        for (const slots of [1, 2, 4]) {
          const m = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { dtype, streamBlocks: { slots, residentBlocks, weights8bit } });
          expect(m.streamer!.weights8bit).toBe(weights8bit);
          for (let r = 0; r < 2; r++) for (let i = 0; i < 2; i++) expect(maxAbsDiff(m.forward(inp[i]), want[i]), `slots ${slots} run ${r}`).toBe(0);
          m.dispose();
        }
        // and the 8-bit model is not the bf16/f32 one (the round trip changed the weights)
        expect(maxAbsDiff(want[0], HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { dtype }).forward(inp[0]))).toBeGreaterThan(0);
        ref.dispose();
        T.disposeAll(Object.values(ref8));
        expect(() => HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { weights8bit: 'int4' as 'int8' } })).toThrow(/weights8bit/);
      });

  it('works with the step-skip hook (a skipped step releases block 0 without prefetching)', () => {
    const m = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { slots: 2 } });
    const inp = inputs(3);
    let residual: T.Tensor | null = null;
    const hook = (skip: boolean): StepSkipHook => ({
      shouldSkip: () => skip,
      applySkip: (h) => T.add(h, residual!),
      record: (b, a) => {
        residual = T.keep(T.sub(a, b));
      },
    });
    const full = m.forward(inp, { stepSkip: hook(false) });
    expect(maxAbsDiff(full, resident.forward(inp))).toBe(0);
    const skipped = m.forward(inp, { stepSkip: hook(true) });
    expect(maxAbsDiff(skipped, full)).toBeLessThan(1e-5);
    expect(maxAbsDiff(m.forward(inp), full)).toBe(0);
    m.dispose();
  });

  it('recovers after a forward that throws half-way', () => {
    const m = HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { slots: 2 } });
    const inp = inputs(4);
    expect(() => m.forward(inp, { debug: (n) => { if (n === 'single_transformer_blocks.1') throw new Error('stop'); } })).toThrow('stop');
    expect(maxAbsDiff(m.forward(inp), resident.forward(inp))).toBe(0);
    m.dispose();
  });

  it('loads from safetensors with the same key checks', () => {
    const d = mkdtempSync(join(tmpdir(), 'dit-stream-'));
    writeSafetensors(join(d, 'model.safetensors'), weights);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ num_attention_heads: 2, attention_head_dim: 8, num_layers: 2, num_single_layers: 3, num_refiner_layers: 1, text_embed_dim: 12, pooled_projection_dim: 6, rope_axes_dim: [2, 2, 4], has_image_proj: true, image_proj_dim: 10, has_clean_x_embedder: true }));
    const m = HunyuanVideoTransformer3DModelPacked.load(d, { streamBlocks: { slots: 2 }, dtype: 'f32' });
    const inp = inputs(5);
    expect(maxAbsDiff(m.forward(inp), resident.forward(inp))).toBe(0);
    m.dispose();
    const broken = { ...weights };
    delete broken['single_transformer_blocks.2.proj_mlp.bias'];
    expect(() => HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, broken, { streamBlocks: {} })).toThrow(DiTWeightsError);
    expect(() => HunyuanVideoTransformer3DModelPacked.fromWeights(cfg, weights, { streamBlocks: { slots: 0 } })).toThrow(/slots/);
  });
});
