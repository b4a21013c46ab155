import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { openSafetensors, writeSafetensors } from '@framepack/safetensors';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraError, LoraStack, ModuleIndex, listLoras, loadLora, parseLora, shapesOf, withLoras } from '../src/index.js';
import { maxAbsDiff, naiveMatmul, rand, randomWeights, rng, tinyShapes } from './helpers.js';

const H = 8;
const shapes = tinyShapes(H);

/** Expected W + s * up @ down for rows [r0, r1) of up, computed with the naive oracle. */
function expectMerged(w: Tensor, up: Tensor, down: Tensor, scale: number, r0 = 0, r1 = up.shape[0]): Float64Array {
  const rank = down.shape[0];
  const inN = down.numel / rank;
  const u = up.toFloat32Array().subarray(r0 * rank, r1 * rank);
  const d = naiveMatmul(u, down.toFloat32Array(), r1 - r0, rank, inN);
  const base = w.toFloat32Array();
  return d.map((v, i) => base[i] + scale * v);
}

describe('ModuleIndex', () => {
  it('resolves kohya flat names with underscores against the real module tree', () => {
    const idx = new ModuleIndex(shapes);
    expect(idx.byFlat('transformer_blocks_0_attn_add_k_proj')?.name).toBe('transformer_blocks.0.attn.add_k_proj');
    expect(idx.byFlat('transformer_blocks_1_ff_context_net_0_proj')?.name).toBe('transformer_blocks.1.ff_context.net.0.proj');
    expect(idx.byFlat('single_transformer_blocks_1_attn_to_v')?.name).toBe('single_transformer_blocks.1.attn.to_v');
    expect(idx.byFlat('transformer_blocks_0_attn_add_k')).toBeUndefined();
  });

  it('builds fused original HunyuanVideo modules with row ranges from the real shapes', () => {
    const idx = new ModuleIndex(shapes);
    const qkv = idx.byName('double_blocks.1.img_attn_qkv')!;
    expect(qkv.outFeatures).toBe(3 * H);
    expect(qkv.parts.map((p) => [p.key, ...p.rows])).toEqual([
      ['transformer_blocks.1.attn.to_q.weight', 0, H],
      ['transformer_blocks.1.attn.to_k.weight', H, 2 * H],
      ['transformer_blocks.1.attn.to_v.weight', 2 * H, 3 * H],
    ]);
    const lin1 = idx.byFlat('single_blocks_0_linear1')!;
    expect(lin1.parts.map((p) => [p.key.split('.').slice(-2).join('.'), ...p.rows])).toEqual([
      ['to_q.weight', 0, H],
      ['to_k.weight', H, 2 * H],
      ['to_v.weight', 2 * H, 3 * H],
      ['proj_mlp.weight', 3 * H, 7 * H],
    ]);
    expect(idx.byName('txt_in.individual_token_refiner.blocks.0.self_attn_qkv')?.parts).toHaveLength(3);
    expect(idx.byName('final_layer.adaLN_modulation.1')?.parts[0].swapHalves).toBe(true);
    expect(idx.byName('img_in.proj')?.inShape).toEqual([4, 1, 2, 2]);
    // no guidance embedder in this model: its original name must not appear
    expect(idx.byName('guidance_in.mlp.0')).toBeUndefined();
  });

  it('refuses an ambiguous flat name', () => {
    const idx = new ModuleIndex({ 'a_b.c.weight': [2, 2], 'a.b_c.weight': [2, 2] });
    expect(() => idx.byFlat('a_b_c')).toThrow(/several modules/);
  });
});

describe('LoraStack merge', () => {
  const r = rng(7);
  const rank = 3;
  const pair = (out: number, inp: number) => ({ down: rand([rank, inp], r), up: rand([out, rank], r) });

  it('diffusers/PEFT: scale = weight when there is no alpha; unmatched keys are reported', () => {
    const w = randomWeights(shapes, 1);
    const a = pair(H, H);
    const b = pair(4 * H, H);
    const sd = {
      'transformer.transformer_blocks.0.attn.to_q.lora_A.weight': a.down,
      'transformer.transformer_blocks.0.attn.to_q.lora_B.weight': a.up,
      'transformer.single_transformer_blocks.1.proj_mlp.lora_A.default.weight': b.down,
      'transformer.single_transformer_blocks.1.proj_mlp.lora_B.default.weight': b.up,
      'transformer.transformer_blocks.7.attn.to_q.lora_A.weight': a.down,
      'transformer.transformer_blocks.7.attn.to_q.lora_B.weight': a.up,
      'transformer.transformer_blocks.0.attn.to_k.dora_scale': rand([H], r),
    };
    const stack = new LoraStack(shapes, [{ lora: sd, weight: 0.6, name: 'peft' }]);
    expect(stack.report.loras[0].format).toBe('diffusers');
    expect(stack.targets).toEqual(['single_transformer_blocks.1.proj_mlp.weight', 'transformer_blocks.0.attn.to_q.weight']);
    expect(stack.report.loras[0].unmatched.map((u) => u.key).sort()).toEqual(['transformer.transformer_blocks.0.attn.to_k.dora_scale', 'transformer.transformer_blocks.7.attn.to_q']);
    const q0 = w['transformer_blocks.0.attn.to_q.weight'];
    const m0 = w['single_transformer_blocks.1.proj_mlp.weight'];
    const handle = stack.mergeWeights(w);
    expect(maxAbsDiff(w['transformer_blocks.0.attn.to_q.weight'].toFloat32Array(), expectMerged(q0, a.up, a.down, 0.6))).toBeLessThan(1e-6);
    expect(maxAbsDiff(w['single_transformer_blocks.1.proj_mlp.weight'].toFloat32Array(), expectMerged(m0, b.up, b.down, 0.6))).toBeLessThan(1e-6);
    handle.unmerge();
    expect(w['transformer_blocks.0.attn.to_q.weight']).toBe(q0); // originals restored: bit-exact
    expect(() => new LoraStack(shapes, [{ lora: sd, name: 'peft' }], { strict: true })).toThrow(LoraError);
  });

  it('kohya/musubi: lora_unet_ names resolved through the module tree, scale = weight * alpha / rank', () => {
    const w = randomWeights(shapes, 2);
    const a = pair(H, H);
    const sd = {
      'lora_unet_transformer_blocks_1_attn_add_k_proj.lora_down.weight': a.down,
      'lora_unet_transformer_blocks_1_attn_add_k_proj.lora_up.weight': a.up,
      'lora_unet_transformer_blocks_1_attn_add_k_proj.alpha': T.scalar(1.5),
    };
    const stack = new LoraStack(shapes, [{ lora: sd, weight: 2 }]);
    expect(stack.report.loras[0].format).toBe('kohya');
    expect(stack.report.loras[0].applied[0]).toMatchObject({ module: 'lora_unet_transformer_blocks_1_attn_add_k_proj', rank, alpha: 1.5, scale: 1 });
    const key = 'transformer_blocks.1.attn.add_k_proj.weight';
    const merged = stack.mergeInto(key, w[key]);
    expect(maxAbsDiff(merged.toFloat32Array(), expectMerged(w[key], a.up, a.down, (2 * 1.5) / rank))).toBeLessThan(1e-6);
    // an untargeted weight comes back as the same object
    expect(stack.mergeInto('transformer_blocks.1.attn.to_k.weight', w['transformer_blocks.1.attn.to_k.weight'])).toBe(w['transformer_blocks.1.attn.to_k.weight']);
  });

  it('original HunyuanVideo names: fused qkv and single linear1 split by rows, final adaLN halves swapped', () => {
    const w = randomWeights(shapes, 3);
    const qkv = pair(3 * H, H);
    const lin1 = pair(7 * H, H);
    const fin = pair(2 * H, H);
    const sd = {
      'diffusion_model.double_blocks.0.img_attn_qkv.lora_A.weight': qkv.down,
      'diffusion_model.double_blocks.0.img_attn_qkv.lora_B.weight': qkv.up,
      'lora_unet_single_blocks_1_linear1.lora_down.weight': lin1.down,
      'lora_unet_single_blocks_1_linear1.lora_up.weight': lin1.up,
      'lora_unet_single_blocks_1_linear1.alpha': T.scalar(6),
      'diffusion_model.final_layer.adaLN_modulation.1.lora_A.weight': fin.down,
      'diffusion_model.final_layer.adaLN_modulation.1.lora_B.weight': fin.up,
    };
    const stack = new LoraStack(shapes, [{ lora: sd }]);
    expect(stack.report.loras[0].format).toBe('mixed');
    const check = (key: string, p: { up: Tensor; down: Tensor }, scale: number, r0: number, r1: number) =>
      expect(maxAbsDiff(stack.mergeInto(key, w[key]).toFloat32Array(), expectMerged(w[key], p.up, p.down, scale, r0, r1))).toBeLessThan(1e-6);
    check('transformer_blocks.0.attn.to_q.weight', qkv, 1, 0, H);
    check('transformer_blocks.0.attn.to_k.weight', qkv, 1, H, 2 * H);
    check('transformer_blocks.0.attn.to_v.weight', qkv, 1, 2 * H, 3 * H);
    check('single_transformer_blocks.1.attn.to_q.weight', lin1, 2, 0, H);
    check('single_transformer_blocks.1.attn.to_v.weight', lin1, 2, 2 * H, 3 * H);
    check('single_transformer_blocks.1.proj_mlp.weight', lin1, 2, 3 * H, 7 * H);
    // swapped halves: packed rows [0,H) come from the original's second half
    const key = 'norm_out.linear.weight';
    const got = stack.mergeInto(key, w[key]).toFloat32Array();
    const lo = expectMerged(T.slice(w[key], 0, 0, H), fin.up, fin.down, 1, H, 2 * H);
    const hi = expectMerged(T.slice(w[key], 0, H, 2 * H), fin.up, fin.down, 1, 0, H);
    expect(maxAbsDiff(got, [...lo, ...hi])).toBeLessThan(1e-6);
  });

  it('conv LoRA on img_in (x_embedder.proj)', () => {
    const w = randomWeights(shapes, 4);
    const down = rand([2, 4, 1, 2, 2], r);
    const up = rand([H, 2, 1, 1, 1], r);
    const stack = new LoraStack(shapes, [{ lora: { 'img_in.proj.lora_A.weight': down, 'img_in.proj.lora_B.weight': up } }]);
    const key = 'x_embedder.proj.weight';
    const merged = stack.mergeInto(key, w[key]);
    expect(merged.shape).toEqual([H, 4, 1, 2, 2]);
    expect(maxAbsDiff(merged.toFloat32Array(), expectMerged(w[key], up, down, 1))).toBeLessThan(1e-6);
  });

  it('several LoRAs with their own weights add up on a shared weight', () => {
    const w = randomWeights(shapes, 5);
    const a = pair(H, H);
    const b = pair(3 * H, H);
    const key = 'transformer_blocks.1.attn.to_k.weight';
    const stack = new LoraStack(shapes, [
      { lora: { 'transformer_blocks.1.attn.to_k.lora_A.weight': a.down, 'transformer_blocks.1.attn.to_k.lora_B.weight': a.up }, weight: 0.5, name: 'A' },
      { lora: { 'lora_unet_double_blocks_1_img_attn_qkv.lora_down.weight': b.down, 'lora_unet_double_blocks_1_img_attn_qkv.lora_up.weight': b.up }, weight: -1.25, name: 'B' },
    ]);
    expect(stack.report.loras.map((l) => [l.name, l.format])).toEqual([
      ['A', 'diffusers'],
      ['B', 'kohya-hunyuan'],
    ]);
    const ea = expectMerged(w[key], a.up, a.down, 0.5);
    const eb = expectMerged(w[key], b.up, b.down, -1.25, H, 2 * H);
    const base = w[key].toFloat32Array();
    const expected = ea.map((v, i) => v + eb[i] - base[i]);
    expect(maxAbsDiff(stack.mergeInto(key, w[key]).toFloat32Array(), expected)).toBeLessThan(1e-6);
  });

  it('bf16 weights merge in f32 and come back in bf16; deltas-mode unmerge is exact up to bf16 rounding', () => {
    const w32 = randomWeights(shapes, 6);
    const key = 'transformer_blocks.0.ff.net.2.weight';
    const w: Record<string, Tensor> = { ...w32, [key]: T.cast(w32[key], 'bf16') };
    const p = pair(H, 4 * H);
    const stack = new LoraStack(shapes, [{ lora: { [`transformer.${key.replace('.weight', '')}.lora_A.weight`]: p.down, [`transformer.${key.replace('.weight', '')}.lora_B.weight`]: p.up } }]);
    const orig = w[key].toFloat32Array();
    const h = stack.mergeWeights(w, { keep: 'deltas' });
    expect(w[key].dtype).toBe('bf16');
    const want = expectMerged(T.tensor(orig, [H, 4 * H]), p.up, p.down, 1);
    // bf16 has 8 bits of mantissa: relative rounding 2^-8
    const got = w[key].toFloat32Array();
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -8 + 1e-7);
    h.unmerge();
    const back = w[key].toFloat32Array();
    expect(w[key].dtype).toBe('bf16');
    expect(maxAbsDiff(back, orig)).toBeLessThan(0.02);
  });

  it('shape mismatches are typed errors that name the module', () => {
    const bad = { 'transformer_blocks.0.attn.to_q.lora_A.weight': rand([2, H + 1], r), 'transformer_blocks.0.attn.to_q.lora_B.weight': rand([H, 2], r) };
    expect(() => new LoraStack(shapes, [{ lora: bad, name: 'bad' }])).toThrow(/bad: .*to_q.*input shape \[9\]/);
    const notPair = { 'x.lora_A.weight': rand([2, 4], r), 'x.lora_B.weight': rand([4, 3], r) };
    expect(() => parseLora(notPair)).toThrow(/not a low-rank pair/);
    expect(() => parseLora({ 'some.weight': rand([2], r) }, 'plain')).toThrow(/no LoRA tensors found/);
    expect(() => new LoraStack(shapes, [{ lora: {}, weight: Number.NaN }])).toThrow(/finite/);
  });
});

describe('loading files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loadLora reads a safetensors file; listLoras finds files recursively', () => {
    const r = rng(9);
    mkdirSync(join(dir, 'styles'));
    const f = join(dir, 'styles', 'ghibli.safetensors');
    writeSafetensors(f, {
      'lora_unet_single_transformer_blocks_0_proj_out.lora_down.weight': T.cast(rand([2, 5 * H], r), 'bf16'),
      'lora_unet_single_transformer_blocks_0_proj_out.lora_up.weight': T.cast(rand([H, 2], r), 'bf16'),
      'lora_unet_single_transformer_blocks_0_proj_out.alpha': T.scalar(1),
    });
    writeFileSync(join(dir, 'notes.txt'), 'x');
    expect(listLoras(dir).map((e) => e.name)).toEqual(['styles/ghibli']);
    const parsed = loadLora(f);
    expect(parsed.label).toBe('ghibli');
    expect(parsed.modules[0]).toMatchObject({ rank: 2, alpha: 1, style: 'flat' });
    const w = randomWeights(shapes, 8);
    const stack = new LoraStack(shapes, [{ lora: parsed }]);
    expect(stack.targets).toEqual(['single_transformer_blocks.0.proj_out.weight']);
    expect(shapesOf(w).get('proj_out.weight')).toEqual([16, H]);
    expect(() => loadLora(join(dir, 'x.pt'))).toThrow(/only .safetensors/);
  });
});

describe('withLoras (merge while a checkpoint is read)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-src-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('targeted weights come back merged in the requested dtype, the rest untouched', () => {
    const r = rng(11);
    const w = randomWeights(shapes, 12);
    const bf: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(w)) bf[k] = T.cast(t, 'bf16');
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, bf);
    const p = { down: rand([2, H], r), up: rand([3 * H, 2], r) };
    const stack = new LoraStack(shapes, [{ lora: { 'lora_unet_double_blocks_0_txt_attn_qkv.lora_down.weight': p.down, 'lora_unet_double_blocks_0_txt_attn_qkv.lora_up.weight': p.up, 'lora_unet_double_blocks_0_txt_attn_qkv.alpha': T.scalar(1) }, weight: 0.5 }]);
    expect(stack.targets).toEqual(['transformer_blocks.0.attn.add_k_proj.weight', 'transformer_blocks.0.attn.add_q_proj.weight', 'transformer_blocks.0.attn.add_v_proj.weight']);
    const src = withLoras(openSafetensors(path), stack);
    try {
      const key = 'transformer_blocks.0.attn.add_v_proj.weight';
      const base = bf[key];
      // f32 read of a bf16 file: base widened, delta added in f32, no bf16 rounding of the sum
      const want = expectMerged(T.cast(base, 'f32'), p.up, p.down, 0.5 * (1 / 2), 2 * H, 3 * H);
      const got = src.tensor(key, { dtype: 'f32' });
      expect(got.dtype).toBe('f32');
      expect(maxAbsDiff(got.toFloat32Array(), want)).toBeLessThan(1e-6);
      // default dtype = the file's
      const asFile = src.tensor(key);
      expect(asFile.dtype).toBe('bf16');
      expect(asFile.toFloat32Array()).toEqual(T.cast(got, 'bf16').toFloat32Array());
      const other = 'transformer_blocks.0.attn.to_k.weight';
      expect(src.tensor(other).toFloat32Array()).toEqual(bf[other].toFloat32Array());
      expect(src.keys().length).toBe(shapes.size);
      // raw bytes (a weight streamer's fast path) only for untargeted weights: a merged weight is not the file's bytes
      expect(src.readInto!(key, new Uint8Array(base.numel * 2))).toBe(false);
      const rawOther = new Uint8Array(bf[other].numel * 2);
      expect(src.readInto!(other, rawOther)).toBe(true);
      expect(Array.from(new Uint16Array(rawOther.buffer))).toEqual(Array.from(bf[other].toHost() as Uint16Array));
    } finally {
      src.close();
    }
  });
});
