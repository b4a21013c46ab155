import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import { resizeImage, type RgbImage } from '@framepack/video-io';
import { describe, expect, it } from 'vitest';
import {
  CheckpointMismatchError,
  ClipTextEncoder,
  EncoderConfigError,
  EncoderInputError,
  llamaInvFreq,
  LlamaTextEncoder,
  parseLlamaConfig,
  readSiglipPreprocess,
  siglipPixelValues,
  SiglipVisionEncoder,
} from '@framepack/encoders';
import { clipShapes, ids, llamaConfig, llamaShapes, preLnShapes, randomWeights, relErr } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'enc-'));
const L = { vocab: 50, D: 32, ff: 48, layers: 3, heads: 4, kv: 2, hd: 8 };

describe('LLaMA text encoder', () => {
  it('GQA equals full multi-head attention with each key/value head repeated for its query group', () => {
    const w = randomWeights(llamaShapes(L), 3);
    const gqa = LlamaTextEncoder.fromWeights(llamaConfig(L), w);
    // The same model written as 4 kv heads: kv head j of the full model is kv head floor(j / 2) of the GQA one.
    const full: Record<string, T.Tensor> = { ...w };
    const rep = (t: T.Tensor) => T.indexSelect(T.reshape(t, [L.kv, L.hd, L.D]), 0, T.tensor([0, 0, 1, 1], [4], { dtype: 'i32' }));
    for (let i = 0; i < L.layers; i++)
      for (const n of ['k_proj', 'v_proj']) full[`layers.${i}.self_attn.${n}.weight`] = T.reshape(rep(w[`layers.${i}.self_attn.${n}.weight`]), [L.heads * L.hd, L.D]);
    const mha = LlamaTextEncoder.fromWeights(llamaConfig({ ...L, kv: 4 }), full);
    const x = ids([[1, 5, 9, 2, 44, 17, 3]]);
    for (const idx of [-3, -1, 1]) expect(relErr(gqa.forward(x, null, { hiddenStateIndex: idx }), mha.forward(x, null, { hiddenStateIndex: idx }))).toBeLessThan(1e-6);
  });

  it('right padding does not change the real tokens (causal attention + key mask), as FramePack relies on', () => {
    const enc = LlamaTextEncoder.fromWeights(llamaConfig(L), randomWeights(llamaShapes(L), 4));
    const real = [7, 3, 11, 40, 2, 9];
    const padded = enc.forward(ids([[...real, 0, 0, 0, 0]]), ids([[1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]), { hiddenStateIndex: -3 });
    const alone = enc.forward(ids([real]), null, { hiddenStateIndex: -3 });
    expect(relErr(T.slice(padded, 1, 0, 6), alone)).toBeLessThan(1e-6);
    // and the mask matters for the padded positions: without it they see different keys
    const unmasked = enc.forward(ids([[...real, 0, 0, 0, 0]]), null, { hiddenStateIndex: -3 });
    expect(relErr(T.slice(unmasked, 1, 0, 6), alone)).toBeLessThan(1e-6);
    expect(relErr(T.slice(unmasked, 1, 6, 10), T.slice(padded, 1, 6, 10))).toBeGreaterThan(1e-3);
  });

  it('hidden-state indices: 0 is the embedding, -1 is after the final norm, only needed layers run', () => {
    const w = randomWeights(llamaShapes(L), 5);
    const enc = LlamaTextEncoder.fromWeights(llamaConfig(L), w);
    const x = ids([[4, 8, 15, 16]]);
    const emb = enc.forward(x, null, { hiddenStateIndex: 0 });
    expect(relErr(emb, T.embedding(x, w['embed_tokens.weight']))).toBe(0);
    // hidden_states has layers + 1 entries: -1 == index 3 == the default (last_hidden_state), -2 == index 2
    const last = enc.forward(x);
    expect(last.shape).toEqual([1, 4, L.D]);
    expect(relErr(enc.forward(x, null, { hiddenStateIndex: -1 }), last)).toBe(0);
    expect(relErr(enc.forward(x, null, { hiddenStateIndex: 3 }), last)).toBe(0);
    expect(relErr(enc.forward(x, null, { hiddenStateIndex: -2 }), enc.forward(x, null, { hiddenStateIndex: 2 }))).toBe(0);
    expect(relErr(enc.forward(x, null, { hiddenStateIndex: -3 }), enc.forward(x, null, { hiddenStateIndex: 1 }))).toBe(0);
    expect(() => enc.forward(x, null, { hiddenStateIndex: 4 })).toThrow(EncoderInputError);
    expect(() => enc.forward(ids([[4, 99]]))).toThrow(/outside the vocabulary/);
  });

  it('frees every temporary: only the returned tensor stays allocated', () => {
    const enc = LlamaTextEncoder.fromWeights(llamaConfig(L), randomWeights(llamaShapes(L), 9));
    const x = ids([[3, 1, 4, 1, 5, 9]]), m = ids([[1, 1, 1, 1, 0, 0]]);
    const boolMask = T.ne(m, 0);
    enc.forward(x, m).dispose(); // warm-up
    const before = T.memoryStats('cpu').currentBytes;
    for (const mask of [m, boolMask, null]) for (const i of [-3, -1]) enc.forward(x, mask, { hiddenStateIndex: i }).dispose();
    expect(T.memoryStats('cpu').currentBytes).toBeLessThanOrEqual(before);
  });

  it('RoPE inverse frequencies follow theta and the linear / llama3 rescalings', () => {
    const base = parseLlamaConfig(llamaConfig(L, { rope_theta: 10000 }));
    const inv = llamaInvFreq(base);
    for (let i = 0; i < 4; i++) expect(inv[i]).toBeCloseTo(1 / Math.pow(10000, (2 * i) / 8), 7);
    const lin = llamaInvFreq(parseLlamaConfig(llamaConfig(L, { rope_theta: 10000, rope_scaling: { type: 'linear', factor: 4 } })));
    for (let i = 0; i < 4; i++) expect(lin[i]).toBeCloseTo(inv[i] / 4, 7);
    // llama3: wavelength 2*pi/inv > old_ctx/low_freq_factor is divided by factor; < old_ctx/high_freq_factor kept
    const l3 = llamaInvFreq(parseLlamaConfig(llamaConfig(L, { rope_theta: 10000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } })));
    for (let i = 0; i < 4; i++) {
      const wl = (2 * Math.PI) / inv[i];
      if (wl > 64) expect(l3[i]).toBeCloseTo(inv[i] / 8, 7);
      else if (wl < 16) expect(l3[i]).toBeCloseTo(inv[i], 7);
    }
    // rope_parameters (transformers 5 layout) is read too
    expect(parseLlamaConfig(llamaConfig(L, { rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1234 } })).ropeTheta).toBe(1234);
    expect(() => parseLlamaConfig(llamaConfig(L, { rope_scaling: { rope_type: 'yarn', factor: 2 } }))).toThrow(EncoderConfigError);
    expect(() => parseLlamaConfig(llamaConfig(L, { num_key_value_heads: 3 }))).toThrow(/multiple/);
  });

  it('loads a transformers folder (model. prefix, lm_head ignored, sharded index) and reports bad checkpoints', () => {
    const w = randomWeights(llamaShapes(L), 6);
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(L)));
    const prefixed: Record<string, T.Tensor> = { 'lm_head.weight': T.zeros([L.vocab, L.D]) };
    for (const [k, v] of Object.entries(w)) prefixed[`model.${k}`] = v;
    // two shards + index
    const keys = Object.keys(prefixed);
    const half = Math.ceil(keys.length / 2);
    const shards = [keys.slice(0, half), keys.slice(half)];
    const map: Record<string, string> = {};
    shards.forEach((ks, i) => {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, name), Object.fromEntries(ks.map((k) => [k, prefixed[k]])));
      for (const k of ks) map[k] = name;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    const loaded = LlamaTextEncoder.load(dir);
    const ref = LlamaTextEncoder.fromWeights(llamaConfig(L), w);
    const x = ids([[1, 2, 3, 4, 5]]);
    expect(relErr(loaded.forward(x), ref.forward(x))).toBe(0);
    const partial = LlamaTextEncoder.load(dir, { hiddenStateIndex: -3 }); // layers 0..0 of 3: FramePack's -3
    expect(relErr(partial.forward(x, null, { hiddenStateIndex: -3 }), ref.forward(x, null, { hiddenStateIndex: -3 }))).toBe(0);
    expect(() => partial.forward(x)).toThrow(/not loaded/);
    expect(() => partial.forward(x, null, { hiddenStateIndex: 2 })).toThrow(/not loaded/);
    const f16 = LlamaTextEncoder.load(dir, { dtype: 'f16' });
    expect(f16.dtype).toBe('f16');
    expect(relErr(T.cast(f16.forward(x, null, { hiddenStateIndex: -3 }), 'f32'), ref.forward(x, null, { hiddenStateIndex: -3 }))).toBeLessThan(1e-2);

    const bad = tmp();
    writeFileSync(join(bad, 'config.json'), JSON.stringify(llamaConfig(L)));
    const missing = { ...w };
    delete missing['layers.1.mlp.up_proj.weight'];
    missing['layers.0.self_attn.q_proj.weight'] = T.zeros([8, L.D]);
    writeSafetensors(join(bad, 'model.safetensors'), missing);
    expect(() => LlamaTextEncoder.load(bad)).toThrow(CheckpointMismatchError);
    expect(() => LlamaTextEncoder.load(bad)).toThrow(/missing keys: layers\.1\.mlp\.up_proj\.weight.*wrong shapes: layers\.0\.self_attn\.q_proj\.weight \[8,32\]/);
    expect(() => LlamaTextEncoder.load(tmp())).toThrow(/no config.json/);
    const noHidden = tmp();
    writeFileSync(join(noHidden, 'config.json'), JSON.stringify({ ...llamaConfig(L), hidden_size: undefined }));
    expect(() => LlamaTextEncoder.load(noHidden)).toThrow(/hidden_size/);
  });
});

const C = { vocab: 60, D: 16, ff: 32, layers: 2, pos: 12 };
const clipConfig = (eos: number) => ({ vocab_size: C.vocab, hidden_size: C.D, intermediate_size: C.ff, num_hidden_layers: C.layers, num_attention_heads: 2, max_position_embeddings: C.pos, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, eos_token_id: eos });

describe('CLIP text encoder', () => {
  const w = randomWeights(clipShapes(C), 7);
  it('pools at argmax(ids) with the legacy eos_token_id 2 and at the first EOS otherwise', () => {
    const x = ids([[49 % C.vocab, 5, 59, 7, 59, 59], [3, 59, 2, 4, 9, 1]]);
    const legacy = ClipTextEncoder.fromWeights(clipConfig(2), w);
    const { lastHiddenState, pooled } = legacy.forwardWithPooled(x);
    const row = (b: number, i: number) => T.slice(T.slice(lastHiddenState, 0, b, b + 1), 1, i, i + 1);
    expect(relErr(T.slice(pooled, 0, 0, 1), row(0, 2))).toBe(0); // first occurrence of the max id 59
    expect(relErr(T.slice(pooled, 0, 1, 2), row(1, 1))).toBe(0);
    const modern = ClipTextEncoder.fromWeights(clipConfig(7), w);
    const p2 = modern.pooled(x);
    expect(relErr(T.slice(p2, 0, 0, 1), row(0, 3))).toBe(0); // first id 7
    expect(relErr(T.slice(p2, 0, 1, 2), row(1, 0))).toBe(0); // no EOS in the row: position 0
  });
  it('is causal: tokens after a position do not change it', () => {
    const enc = ClipTextEncoder.fromWeights(clipConfig(2), w);
    const a = enc.forward(ids([[1, 2, 3, 4, 5, 6]])), b = enc.forward(ids([[1, 2, 3, 40, 50, 0]]));
    expect(relErr(T.slice(a, 1, 0, 3), T.slice(b, 1, 0, 3))).toBe(0);
    expect(relErr(T.slice(a, 1, 3, 6), T.slice(b, 1, 3, 6))).toBeGreaterThan(1e-3);
    expect(() => enc.forward(ids([new Array(13).fill(1)]))).toThrow(/max_position_embeddings/);
  });
  it('loads a folder saved with the text_model. prefix and position_ids buffer', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['CLIPTextModel'], ...clipConfig(2) }));
    const pre: Record<string, T.Tensor> = { 'text_model.embeddings.position_ids': T.arange(0, C.pos, 1, { dtype: 'i64' }) };
    for (const [k, v] of Object.entries(w)) pre[`text_model.${k}`] = v;
    writeSafetensors(join(dir, 'model.safetensors'), pre);
    const x = ids([[0, 9, 59, 59]]);
    expect(relErr(ClipTextEncoder.load(dir).pooled(x), ClipTextEncoder.fromWeights(clipConfig(2), w).pooled(x))).toBe(0);
  });
});

describe('SigLIP vision encoder', () => {
  const S = { D: 16, ff: 24, layers: 2, P: 4, size: 16 };
  const cfg = { hidden_size: S.D, intermediate_size: S.ff, num_hidden_layers: S.layers, num_attention_heads: 2, num_channels: 3, image_size: S.size, patch_size: S.P, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 };
  const shapes: Record<string, number[]> = {
    'embeddings.patch_embedding.weight': [S.D, 3, S.P, S.P],
    'embeddings.patch_embedding.bias': [S.D],
    'embeddings.position_embedding.weight': [16, S.D],
    'post_layernorm.weight': [S.D],
    'post_layernorm.bias': [S.D],
  };
  for (let i = 0; i < S.layers; i++) Object.assign(shapes, preLnShapes(`encoder.layers.${i}.`, S.D, S.ff));
  const w = randomWeights(shapes, 8);
  const image: RgbImage = { width: 23, height: 19, data: new Uint8Array(23 * 19 * 3).map((_, i) => (i * 37) % 256) };

  it('preprocesses as SiglipImageProcessor: bicubic resize to the config size, (u/255 - 0.5)/0.5', () => {
    const pre = readSiglipPreprocess(null, 16);
    const px = siglipPixelValues(image, pre);
    expect(px.shape).toEqual([1, 3, 16, 16]);
    const r = resizeImage(image, 16, 16, 'bicubic');
    const v = px.toFloat32Array();
    for (const [c, i] of [[0, 0], [1, 37], [2, 255]]) expect(v[c * 256 + i]).toBeCloseTo((r.data[i * 3 + c] / 255 - 0.5) / 0.5, 6);
  });
  it('loads a folder (vision_model. prefix, head keys skipped, preprocessor_config.json) and encodes an image', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ do_resize: true, size: { height: 16, width: 16 }, resample: 2, rescale_factor: 1 / 255, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }));
    const pre: Record<string, T.Tensor> = { 'vision_model.head.probe': T.zeros([1, 1, S.D]) };
    for (const [k, v] of Object.entries(w)) pre[`vision_model.${k}`] = v;
    writeSafetensors(join(dir, 'model.safetensors'), pre);
    const enc = SiglipVisionEncoder.load(dir);
    expect(enc.preprocess.resample).toBe('bilinear');
    const out = enc.encodeImage(image);
    expect(out.shape).toEqual([1, 16, S.D]);
    const ref = SiglipVisionEncoder.fromWeights(cfg, w).forward(siglipPixelValues(image, enc.preprocess));
    expect(relErr(out, ref)).toBe(0);
    expect(() => enc.pool(out)).toThrow(/withHead/);
    expect(() => enc.forward(T.zeros([1, 3, 8, 8]))).toThrow(/patch grid/);
  });
});
