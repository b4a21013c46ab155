import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { writeSafetensors } from '@framepack/safetensors';
import {
  DEFAULT_CONFIG, DiTConfigError, DiTWeightsError, expectedWeightShapes, HunyuanVideoTransformer3DModelPacked,
  loadWeights, parseConfig, readConfigFile,
} from '@framepack/dit-model';
import { maxAbsDiff, randomWeights, tinyConfig } from './helpers.js';

// the released config (kijai/ComfyUI-FramePackWrapper transformer_config.json, as in the research spec)
const FRAMEPACK_CONFIG = {
  _class_name: 'HunyuanVideoTransformer3DModelPacked', _diffusers_version: '0.33.0.dev0', _name_or_path: 'hunyuanvideo-community/HunyuanVideo',
  attention_head_dim: 128, guidance_embeds: true, has_clean_x_embedder: true, has_image_proj: true, image_proj_dim: 1152,
  in_channels: 16, mlp_ratio: 4.0, num_attention_heads: 24, num_layers: 20, num_refiner_layers: 2, num_single_layers: 40,
  out_channels: 16, patch_size: 2, patch_size_t: 1, pooled_projection_dim: 768, qk_norm: 'rms_norm', rope_axes_dim: [16, 56, 56],
  rope_theta: 256.0, text_embed_dim: 4096,
};

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected a throw');
};

describe('config', () => {
  it('defaults are the reference class defaults', () => {
    const c = parseConfig({});
    expect(c).toEqual(DEFAULT_CONFIG);
    expect(c.numAttentionHeads * c.attentionHeadDim).toBe(3072);
    expect(c.hasImageProj).toBe(false);
  });
  it('reads the released FramePack config (ignoring _ keys)', () => {
    const c = parseConfig(FRAMEPACK_CONFIG);
    expect(c.hasImageProj && c.hasCleanXEmbedder).toBe(true);
    expect(c.ropeAxesDim).toEqual([16, 56, 56]);
  });
  it('rejects unknown keys, other classes and inconsistent values, listing every problem', () => {
    expect(codeOf(() => parseConfig({ num_layers: 2, sample_size: 32 }))).toMatchObject({ name: 'DiTConfigError', message: expect.stringContaining('sample_size') });
    expect(codeOf(() => parseConfig({ _class_name: 'FluxTransformer2DModel' })).message).toContain('FluxTransformer2DModel');
    const e = codeOf(() => parseConfig({ rope_axes_dim: [16, 56, 57], qk_norm: 'layer_norm', num_attention_heads: 0 }));
    expect(e.name).toBe('DiTConfigError');
    expect(e.message).toContain('ropeAxesDim');
    expect(e.message).toContain('qkNorm');
    expect(e.message).toContain('numAttentionHeads');
    expect(codeOf(() => parseConfig({ rope_axes_dim: [16, 56, 54] })).message).toContain('add up to');
    expect(codeOf(() => parseConfig({ in_channels: 8, has_clean_x_embedder: true })).message).toContain('inChannels 16');
  });
  it('reads config.json files with errors naming the file', () => {
    const d = mkdtempSync(join(tmpdir(), 'dit-cfg-'));
    writeFileSync(join(d, 'config.json'), JSON.stringify(FRAMEPACK_CONFIG));
    expect(readConfigFile(join(d, 'config.json')).numSingleLayers).toBe(40);
    writeFileSync(join(d, 'bad.json'), '{ nope');
    const e = codeOf(() => readConfigFile(join(d, 'bad.json')));
    expect(e.name).toBe('DiTConfigError');
    expect(e.message).toContain('bad.json');
  });
});

describe('weights', () => {
  it('the released config has 12,874,314,816 parameters under the reference keys', () => {
    const shapes = expectedWeightShapes(parseConfig(FRAMEPACK_CONFIG));
    let n = 0;
    for (const s of shapes.values()) n += s.reduce((a, b) => a * b, 1);
    expect(n).toBe(12_874_314_816);
    expect(shapes.get('single_transformer_blocks.39.proj_out.weight')).toEqual([3072, 15360]);
    expect(shapes.get('clean_x_embedder.proj_4x.weight')).toEqual([3072, 16, 4, 8, 8]);
    expect(shapes.get('context_embedder.token_refiner.refiner_blocks.1.ff.net.0.proj.weight')).toEqual([12288, 3072]);
    expect(shapes.has('transformer_blocks.19.norm2.weight')).toBe(false);
  });
  it('reports missing, unexpected and mis-shaped keys in one error', () => {
    const c = tinyConfig();
    const w = randomWeights(c);
    delete w['transformer_blocks.0.attn.norm_q.weight'];
    delete w['proj_out.bias'];
    w['transformer_blocks.0.extra.weight'] = T.zeros([2]);
    w['x_embedder.proj.weight'] = T.zeros([16, 16, 1, 4, 4]);
    let err: unknown;
    try {
      loadWeights(c, w);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiTWeightsError);
    const e = err as DiTWeightsError;
    expect([...e.missing].sort()).toEqual(['proj_out.bias', 'transformer_blocks.0.attn.norm_q.weight']);
    expect(e.unexpected).toEqual(['transformer_blocks.0.extra.weight']);
    expect(e.misShaped).toHaveLength(1);
    expect(e.message).toContain('x_embedder.proj.weight: [16, 16, 1, 4, 4] (expected [16, 16, 1, 2, 2])');
    expect(e.message).toMatch(/missing \(2\)[\s\S]*unexpected \(1\)[\s\S]*mis-shaped \(1\)/);
  });
  it('loads a diffusers folder (config.json + sharded index) and a single file, in the requested dtype', () => {
    const c = tinyConfig();
    const w = randomWeights(c, 3);
    const d = mkdtempSync(join(tmpdir(), 'dit-w-'));
    const keys = Object.keys(w);
    const half = Math.floor(keys.length / 2);
    const shards = [keys.slice(0, half), keys.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((ks, i) => {
      const name = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(d, name), Object.fromEntries(ks.map((k) => [k, w[k]])));
      for (const k of ks) weightMap[k] = name;
    });
    writeFileSync(join(d, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const cfgJson = {
      _class_name: 'HunyuanVideoTransformer3DModelPacked', num_attention_heads: 2, attention_head_dim: 8, num_layers: 1, num_single_layers: 1,
      num_refiner_layers: 1, text_embed_dim: 12, pooled_projection_dim: 6, rope_axes_dim: [2, 2, 4], has_image_proj: true, image_proj_dim: 10, has_clean_x_embedder: true,
    };
    expect(codeOf(() => HunyuanVideoTransformer3DModelPacked.load(d)).message).toContain('no config.json');
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfgJson));

    const fromDir = HunyuanVideoTransformer3DModelPacked.load(d);
    const fromMem = HunyuanVideoTransformer3DModelPacked.fromWeights(c, w);
    expect(fromDir.config).toEqual(fromMem.config);
    expect(fromDir.dtype).toBe('f32');
    for (const [k, t] of fromMem.weights.tensors) expect(maxAbsDiff(fromDir.weights.tensors.get(k)!, t), k).toBe(0);

    const single = join(d, 'single');
    writeSafetensors(`${single}.safetensors`, w);
    const fromFile = HunyuanVideoTransformer3DModelPacked.load(`${single}.safetensors`, { config: cfgJson, dtype: 'bf16' });
    expect(fromFile.dtype).toBe('bf16');
    expect(fromFile.weights.tensors.get('transformer_blocks.0.attn.to_q.weight')!.dtype).toBe('bf16');
    expect(fromFile.weights.tensors.get('x_embedder.proj.weight')!.toFloat32Array()[0]).toBe(T.cast(T.cast(w['x_embedder.proj.weight'], 'bf16'), 'f32').toFloat32Array()[0]);
    for (const m of [fromDir, fromMem, fromFile]) m.dispose();
  });
});
