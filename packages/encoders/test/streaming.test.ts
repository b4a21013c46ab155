import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import { describe, expect, it } from 'vitest';
import { EncoderInputError, LlamaTextEncoder, SiglipVisionEncoder } from '@framepack/encoders';
import { ids, llamaConfig, llamaShapes, preLnShapes, randomWeights, randTensor } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'enc-stream-'));
const maxAbs = (a: T.Tensor, b: T.Tensor) => {
  const x = a.toFloat32Array(), y = b.toFloat32Array();
  expect(x.length).toBe(y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

/** Bytes allocated (cpu tensors) and the peak while loading and running `fn` once. */
function measure<X>(fn: () => X): { value: X; held: number; peak: number } {
  const before = T.memoryStats('cpu').currentBytes;
  T.resetPeakMemory('cpu');
  const value = fn();
  return { value, held: T.memoryStats('cpu').currentBytes - before, peak: T.memoryStats('cpu').peakBytes - before };
}

// GQA (4 query heads, 2 kv heads), 6 layers; big enough that a layer outweighs the activations of a short prompt.
const L = { vocab: 40, D: 64, ff: 160, layers: 6, heads: 4, kv: 2, hd: 16 };
const llamaW = randomWeights(llamaShapes(L), 11);
/** A fresh copy (an encoder built with fromWeights owns the tensors it keeps and disposes them with itself). */
const copy = (w: Record<string, T.Tensor>) => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, T.clone(v)]));
const prompt = ids([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 0, 0]]);
const mask = T.tensor([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 8], { dtype: 'i64' });

describe('LLaMA layer streaming', () => {
  const resident = LlamaTextEncoder.fromWeights(llamaConfig(L), llamaW);

  it('gives exactly the resident hidden states for any slot count, call after call', () => {
    for (const slots of [1, 2, 3, 6, 9]) {
      const s = LlamaTextEncoder.fromWeights(llamaConfig(L), copy(llamaW), { streamLayers: { slots } });
      expect(s.streamer!.slots).toBe(Math.min(slots, L.layers));
      for (let r = 0; r < 2; r++)
        for (const idx of [-3, -1, 0, 2]) expect(maxAbs(s.forward(prompt, mask, { hiddenStateIndex: idx }), resident.forward(prompt, mask, { hiddenStateIndex: idx })), `slots ${slots} idx ${idx}`).toBe(0);
      s.dispose();
    }
  });

  it('streams int8/fp8 layers: exactly the resident encoder whose layer matrices are dequantize(quantize(w))', () => {
    for (const weights8bit of ['int8', 'fp8'] as const) {
      const ref8 = Object.fromEntries(Object.entries(llamaW).map(([k, v]) => [k, /^layers\.\d+\./.test(k) && T.isQuantizable8(v.shape) ? T.roundTrip8(v, weights8bit) : T.clone(v)]));
      const ref = LlamaTextEncoder.fromWeights(llamaConfig(L), ref8);
      for (const slots of [1, 2, 6]) {
        const s = LlamaTextEncoder.fromWeights(llamaConfig(L), copy(llamaW), { streamLayers: { slots, weights8bit } });
        for (let r = 0; r < 2; r++) expect(maxAbs(s.forward(prompt, mask, { hiddenStateIndex: -3 }), ref.forward(prompt, mask, { hiddenStateIndex: -3 })), `${weights8bit} slots ${slots}`).toBe(0);
        s.dispose();
      }
      expect(maxAbs(ref.forward(prompt, mask, { hiddenStateIndex: -3 }), resident.forward(prompt, mask, { hiddenStateIndex: -3 }))).toBeGreaterThan(0);
      ref.dispose();
    }
    expect(() => LlamaTextEncoder.fromWeights(llamaConfig(L), copy(llamaW), { streamLayers: { weights8bit: 'int4' as 'int8' } })).toThrow(/weights8bit/);
  });

  it('streams only the layers hidden_states[-3] needs (no last 2 layers, no final norm) and holds less memory', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(L)));
    writeSafetensors(join(dir, 'model.safetensors'), Object.fromEntries(Object.entries(llamaW).map(([k, v]) => [`model.${k}`, v])));
    const run = (opts: Parameters<typeof LlamaTextEncoder.load>[1]) =>
      measure(() => {
        const enc = LlamaTextEncoder.load(dir, { hiddenStateIndex: -3, ...opts });
        return { enc, out: enc.forward(prompt, mask, { hiddenStateIndex: -3 }) };
      });
    const res = run({});
    const str = run({ streamLayers: { slots: 2 } });
    expect(maxAbs(str.value.out, res.value.out)).toBe(0);
    const s = str.value.enc.streamer!;
    expect(s.order).toEqual(['layers.0', 'layers.1', 'layers.2', 'layers.3']);
    const layerBytes = (4 * L.D * L.D + 3 * L.D * L.ff + 2 * L.D) * 4 - 2 * L.heads * L.hd * L.D * 4 + 2 * L.kv * L.hd * L.D * 4;
    expect(s.hostBytes).toBe(4 * layerBytes);
    expect(s.deviceBytes).toBe(2 * layerBytes);
    // resident holds 4 layers as tensors, streamed holds 2 slots: the difference is exactly 2 layers
    expect(res.held - str.held).toBe(2 * layerBytes);
    expect(str.peak).toBeLessThan(res.peak);
    expect(() => str.value.enc.forward(prompt, mask)).toThrow(/not loaded/);
    expect(() => str.value.enc.forward(prompt, mask, { hiddenStateIndex: 5 })).toThrow(/not loaded/);
    // and a -3 pass still works after the refused calls (nothing left acquired)
    expect(maxAbs(str.value.enc.forward(prompt, mask, { hiddenStateIndex: -3 }), res.value.out)).toBe(0);
    res.value.enc.dispose();
    str.value.enc.dispose();
  });

  it("hostCopy 'source': layers read from the checkpoint on every pass, host memory = the 2 staging slots", () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(L)));
    writeSafetensors(join(dir, 'model.safetensors'), llamaW);
    const res = LlamaTextEncoder.load(dir, { hiddenStateIndex: -3 });
    const src = LlamaTextEncoder.load(dir, { hiddenStateIndex: -3, streamLayers: { slots: 2, hostCopy: 'source' } });
    const layerBytes = (2 * L.heads * L.hd * L.D + 2 * L.kv * L.hd * L.D + 3 * L.D * L.ff + 2 * L.D) * 4;
    expect(src.streamer!.hostBytes).toBe(2 * layerBytes);
    for (let r = 0; r < 2; r++) expect(maxAbs(src.forward(prompt, mask, { hiddenStateIndex: -3 }), res.forward(prompt, mask, { hiddenStateIndex: -3 }))).toBe(0);
    // 4 layers through 2 slots: every pass copies (and reads) every layer again
    expect(src.streamer!.loads).toBeGreaterThanOrEqual(8);
    src.dispose();
    res.dispose();
    const sigCfg = { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 3, num_attention_heads: 2, image_size: 8, patch_size: 4 };
    const sigW = randomWeights({
      'embeddings.patch_embedding.weight': [16, 3, 4, 4], 'embeddings.patch_embedding.bias': [16], 'embeddings.position_embedding.weight': [4, 16],
      'post_layernorm.weight': [16], 'post_layernorm.bias': [16], ...preLnShapes('encoder.layers.0.', 16, 24), ...preLnShapes('encoder.layers.1.', 16, 24), ...preLnShapes('encoder.layers.2.', 16, 24),
    }, 5);
    const px = randTensor([1, 3, 8, 8], 2, 1);
    const sig = SiglipVisionEncoder.fromWeights(sigCfg, copy(sigW), { streamLayers: { slots: 1, hostCopy: 'source' } });
    for (let r = 0; r < 2; r++) expect(maxAbs(sig.forward(px), SiglipVisionEncoder.fromWeights(sigCfg, sigW).forward(px))).toBe(0);
    sig.dispose();
  });

  it('bf16 storage (the real encoders): streamed == resident, the embedding table read on the host in bf16', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(L)));
    writeSafetensors(join(dir, 'model.safetensors'), llamaW);
    const res = LlamaTextEncoder.load(dir, { dtype: 'bf16', hiddenStateIndex: -3 });
    const str = LlamaTextEncoder.load(dir, { dtype: 'bf16', hiddenStateIndex: -3, streamLayers: { slots: 2 } });
    const a = res.forward(prompt, mask, { hiddenStateIndex: -3 }), b = str.forward(prompt, mask, { hiddenStateIndex: -3 });
    expect(b.dtype).toBe('bf16');
    expect(maxAbs(T.cast(b, 'f32'), T.cast(a, 'f32'))).toBe(0);
    res.dispose();
    str.dispose();
  });

  it('copies the streamed layers (the given layer tensors stay the caller\'s) and defaults to 2 slots', () => {
    const given = copy(llamaW);
    const s = LlamaTextEncoder.fromWeights(llamaConfig(L), given, { streamLayers: {} });
    expect(s.streamer!.slots).toBe(2);
    expect(s.dtype).toBe('f32');
    expect(s.device).toBe('cpu');
    s.dispose();
    expect(given['layers.0.mlp.up_proj.weight'].toArray()).toEqual(llamaW['layers.0.mlp.up_proj.weight'].toArray());
  });

  it('refuses a bad slot count', () => {
    expect(() => LlamaTextEncoder.fromWeights(llamaConfig(L), llamaW, { streamLayers: { slots: 0 } })).toThrow(EncoderInputError);
    expect(() => LlamaTextEncoder.fromWeights(llamaConfig(L), llamaW, { streamLayers: { slots: 1.5 } })).toThrow(/slots/);
  });
});

describe('SigLIP layer streaming', () => {
  const S = { D: 48, ff: 96, layers: 4, P: 4, size: 16 };
  const cfg = { hidden_size: S.D, intermediate_size: S.ff, num_hidden_layers: S.layers, num_attention_heads: 3, num_channels: 3, image_size: S.size, patch_size: S.P, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 };
  const shapes: Record<string, number[]> = {
    'embeddings.patch_embedding.weight': [S.D, 3, S.P, S.P],
    'embeddings.patch_embedding.bias': [S.D],
    'embeddings.position_embedding.weight': [16, S.D],
    'post_layernorm.weight': [S.D],
    'post_layernorm.bias': [S.D],
  };
  for (let i = 0; i < S.layers; i++) Object.assign(shapes, preLnShapes(`encoder.layers.${i}.`, S.D, S.ff));
  const w = randomWeights(shapes, 12);
  const px = randTensor([2, 3, S.size, S.size], 13, 1);

  it('gives exactly the resident last_hidden_state for any slot count, call after call', () => {
    const ref = SiglipVisionEncoder.fromWeights(cfg, w).forward(px);
    for (const slots of [1, 2, 4, 7]) {
      const s = SiglipVisionEncoder.fromWeights(cfg, copy(w), { streamLayers: { slots } });
      for (let r = 0; r < 3; r++) expect(maxAbs(s.forward(px), ref), `slots ${slots}`).toBe(0);
      s.dispose();
    }
  });

  it('loads a folder with streamLayers, holds only the slots, and frees every temporary', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    writeSafetensors(join(dir, 'model.safetensors'), Object.fromEntries(Object.entries(w).map(([k, v]) => [`vision_model.${k}`, v])));
    const run = (opts: Parameters<typeof SiglipVisionEncoder.load>[1]) =>
      measure(() => {
        const enc = SiglipVisionEncoder.load(dir, opts);
        return { enc, out: enc.forward(px) };
      });
    const res = run({});
    const str = run({ streamLayers: { slots: 2 } });
    expect(maxAbs(str.value.out, res.value.out)).toBe(0);
    const layerBytes = (4 * S.D * S.D + 2 * S.D * S.ff + 4 * S.D + S.ff + 5 * S.D) * 4;
    expect(str.value.enc.streamer!.hostBytes).toBe(S.layers * layerBytes);
    expect(res.held - str.held).toBe((S.layers - 2) * layerBytes);
    expect(str.peak).toBeLessThan(res.peak);
    // a forward allocates only its result
    const before = T.memoryStats('cpu').currentBytes;
    const out = str.value.enc.forward(px);
    expect(T.memoryStats('cpu').currentBytes - before).toBe(out.numel * 4);
    res.value.enc.dispose();
    str.value.enc.dispose();
  });
});
