import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as T from '@framepack/tensor-core';
import { openSafetensors, writeSafetensors } from '@framepack/safetensors';
import {
  configFromDiffusers,
  expectedParameters,
  HUNYUAN_VIDEO_VAE_CONFIG,
  HunyuanVideoVae,
  LATENT_RGB_BIAS,
  LATENT_RGB_FACTORS,
  previewImage,
  previewRgb,
  VaeConfigError,
  VaeInputError,
  vaeLayout,
  VaeWeightsError,
} from '@framepack/vae-tiling';
// Imported by path (no workspace cycle with the golden runner).
import { defaultGoldenDir } from '../../../tooling/golden/src/index.js';
import { randomWeights, randTensor, relL2, tinyConfig, tinyVae } from './helpers.js';

const GOLDEN = join(defaultGoldenDir(), 'vae-hunyuan');

describe('config', () => {
  it('takes the class defaults for absent keys and ignores diffusers bookkeeping keys', () => {
    const c = configFromDiffusers({ _class_name: 'AutoencoderKLHunyuanVideo', _diffusers_version: '0.33.1' });
    expect(c).toEqual({ ...HUNYUAN_VIDEO_VAE_CONFIG });
    expect(configFromDiffusers({ block_out_channels: [8, 16, 16, 16], norm_num_groups: 4 }).blockOutChannels).toEqual([8, 16, 16, 16]);
  });
  it('names the bad field', () => {
    expect(() => configFromDiffusers({ _class_name: 'AutoencoderKL' })).toThrow(VaeConfigError);
    expect(() => configFromDiffusers({ layers_per_block: 0 })).toThrow(/layers_per_block/);
    expect(() => configFromDiffusers({ block_out_channels: [128, 256, 500, 512] })).toThrow(/norm_num_groups/);
    expect(() => configFromDiffusers({ down_block_types: ['DownEncoderBlock2D'] })).toThrow(/down_block_types/);
    expect(() => configFromDiffusers({ temporal_compression_ratio: 8 })).toThrow(/temporal_compression_ratio/);
    expect(() => configFromDiffusers({ act_fn: 'gelu' })).toThrow(/act_fn/);
  });
  it('derives the reference block layout (time strides in the middle blocks, none in the last)', () => {
    const { down, up } = vaeLayout(HUNYUAN_VIDEO_VAE_CONFIG);
    expect(down.map((b) => b.downsampleStride)).toEqual([[1, 2, 2], [2, 2, 2], [2, 2, 2], null]);
    expect(up.map((b) => b.upsampleFactor)).toEqual([[1, 2, 2], [2, 2, 2], [2, 2, 2], null]);
    expect(up.map((b) => [b.inChannels, b.outChannels, b.numLayers])).toEqual([[512, 512, 3], [512, 512, 3], [512, 256, 3], [256, 128, 3]]);
  });
});

describe('weights', () => {
  it('lists the real checkpoint names and shapes', () => {
    const p = expectedParameters(HUNYUAN_VIDEO_VAE_CONFIG);
    expect(p.get('encoder.conv_in.conv.weight')).toEqual([128, 3, 3, 3, 3]);
    expect(p.get('encoder.conv_out.conv.weight')).toEqual([32, 512, 3, 3, 3]);
    expect(p.get('quant_conv.weight')).toEqual([32, 32, 1, 1, 1]);
    expect(p.get('post_quant_conv.weight')).toEqual([16, 16, 1, 1, 1]);
    expect(p.get('decoder.conv_in.conv.weight')).toEqual([512, 16, 3, 3, 3]);
    expect(p.get('decoder.conv_out.conv.weight')).toEqual([3, 128, 3, 3, 3]);
    expect(p.get('decoder.mid_block.attentions.0.to_out.0.weight')).toEqual([512, 512]);
    const shortcuts = [...p.keys()].filter((k) => k.includes('conv_shortcut') && k.endsWith('weight')).sort();
    expect(shortcuts).toEqual([
      'decoder.up_blocks.2.resnets.0.conv_shortcut.conv.weight',
      'decoder.up_blocks.3.resnets.0.conv_shortcut.conv.weight',
      'encoder.down_blocks.1.resnets.0.conv_shortcut.conv.weight',
      'encoder.down_blocks.2.resnets.0.conv_shortcut.conv.weight',
    ]);
  });
  it.skipIf(!existsSync(GOLDEN))('match the reference state dict of the golden case exactly', () => {
    const json = JSON.parse(readFileSync(join(GOLDEN, 'case.json'), 'utf8'));
    const f = openSafetensors(join(GOLDEN, json.weights_from ? join('..', json.weights_from, 'weights.safetensors') : 'weights.safetensors'));
    const want = expectedParameters(configFromDiffusers(json.config));
    expect(f.keys().sort()).toEqual([...want.keys()].sort());
    for (const k of f.keys()) expect(f.info(k).shape, k).toEqual(want.get(k));
    f.close();
  });

  const dir = mkdtempSync(join(tmpdir(), 'vae-tiling-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = tinyConfig();
  const diffusersJson = { _class_name: 'AutoencoderKLHunyuanVideo', latent_channels: 4, block_out_channels: [8, 8, 8, 8], layers_per_block: 1, norm_num_groups: 4 };

  it('loads a diffusers folder and a lone file (config beside it), giving the same model as fromWeights', () => {
    const folder = join(dir, 'vae');
    mkdirSync(folder);
    const w = randomWeights(config, 21);
    writeSafetensors(join(folder, 'diffusion_pytorch_model.safetensors'), Object.fromEntries(w));
    writeFileSync(join(folder, 'config.json'), JSON.stringify(diffusersJson));
    const a = HunyuanVideoVae.load(folder);
    const b = HunyuanVideoVae.load(join(folder, 'diffusion_pytorch_model.safetensors'));
    const c = HunyuanVideoVae.fromWeights(config, w);
    expect(a.config).toEqual(config);
    const z = randTensor([1, 4, 2, 2, 3], 5);
    const [ya, yb, yc] = [a, b, c].map((v) => v.decode(z).toFloat32Array());
    expect(ya).toEqual(yc);
    expect(yb).toEqual(yc);
    for (const v of [a, b, c]) v.dispose();
  });
  it('reports every missing, unexpected and mis-shaped key in one error', () => {
    const w = randomWeights(config, 22);
    w.delete('decoder.conv_out.conv.bias');
    w.set('decoder.extra.weight', T.zeros([2]));
    w.set('quant_conv.weight', T.zeros([8, 8, 1, 1, 2]));
    const file = join(dir, 'bad.safetensors');
    writeSafetensors(file, Object.fromEntries(w));
    let err: unknown;
    try {
      HunyuanVideoVae.load(file, { config });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VaeWeightsError);
    const e = err as VaeWeightsError;
    expect(e.missing).toEqual(['decoder.conv_out.conv.bias']);
    expect(e.unexpected).toEqual(['decoder.extra.weight']);
    expect(e.misShaped).toEqual([{ key: 'quant_conv.weight', expected: [8, 8, 1, 1, 1], found: [8, 8, 1, 1, 2] }]);
    expect(e.message).toMatch(/missing 1.*unexpected 1.*mis-shaped 1/);
  });
  it('says what to pass when the path is wrong', () => {
    expect(() => HunyuanVideoVae.load(join(dir, 'nope'))).toThrow(VaeConfigError);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => HunyuanVideoVae.load(empty)).toThrow(/config.json/);
  });
});

describe('HunyuanVideoVae', () => {
  const vae = tinyVae({}, 31);
  const sf = vae.scalingFactor;

  it('decodes T latents to 4(T-1)+1 frames at 8x, and encodes back to the latent grid', () => {
    const y = vae.decode(randTensor([1, 4, 3, 2, 3], 1), { tiling: false });
    expect(y.shape).toEqual([1, 3, 9, 16, 24]);
    const e = vae.encode(randTensor([1, 3, 9, 16, 24], 2), { tiling: false });
    expect(e.mean.shape).toEqual([1, 4, 3, 2, 3]);
    expect(vae.encode(randTensor([1, 3, 1, 16, 8], 3)).mean.shape).toEqual([1, 4, 1, 2, 1]);
  });
  it('divides by the scaling factor before decoding and multiplies the encoded mean by it', () => {
    const z = randTensor([1, 4, 2, 2, 2], 4);
    const a = vae.decode(z).toFloat32Array();
    const b = vae.decode(T.mul(z, 2)).toFloat32Array();
    expect(relL2(a, b)).toBeGreaterThan(1e-3); // the input is not normalised away
    const e = vae.encode(randTensor([1, 3, 5, 16, 16], 5));
    expect(relL2(e.latents.toFloat32Array(), e.mean.toFloat32Array().map((v) => v * sf))).toBeLessThan(1e-6);
  });
  it('image mode decodes each latent frame on its own', () => {
    const z = randTensor([1, 4, 3, 2, 2], 6);
    const y = vae.decode(z, { imageMode: true });
    expect(y.shape).toEqual([1, 3, 3, 16, 16]);
    const frames = [0, 1, 2].map((f) => vae.decode(T.slice(z, 2, f, f + 1)));
    expect(relL2(y.toFloat32Array(), T.cat(frames, 2).toFloat32Array())).toBeLessThan(1e-7);
  });
  it('draws the posterior sample with the caller noise: (mean + exp(logvar / 2) * noise) * scaling factor', () => {
    const x = randTensor([1, 3, 5, 16, 8], 7);
    const shapes: number[][] = [];
    const noise = randTensor([1, 4, 2, 2, 1], 8);
    const e = vae.encode(x, { sample: (shape) => (shapes.push(shape), noise) });
    expect(shapes).toEqual([[1, 4, 2, 2, 1]]);
    const m = e.mean.toFloat32Array(), lv = e.logvar.toFloat32Array(), n = noise.toFloat32Array();
    const want = m.map((v, i) => (v + Math.exp(0.5 * Math.min(20, Math.max(-30, lv[i]))) * n[i]) * sf);
    expect(relL2(e.latents.toFloat32Array(), want)).toBeLessThan(1e-6);
    expect(() => vae.encode(x, { sample: () => T.zeros([1, 4, 1, 1, 1]) })).toThrow(VaeInputError);
  });
  it('uses the tiling set with enableTiling when a call passes none', () => {
    const v = tinyVae({}, 31);
    const z = randTensor([1, 4, 2, 5, 5], 9);
    const tiling = { tileSampleMinHeight: 24, tileSampleMinWidth: 24, tileSampleStrideHeight: 16, tileSampleStrideWidth: 16 };
    const explicit = v.decode(z, { tiling }).toFloat32Array();
    v.enableTiling(tiling);
    expect(v.decode(z).toFloat32Array()).toEqual(explicit);
    v.disableTiling();
    expect(relL2(v.decode(z).toFloat32Array(), explicit)).toBeGreaterThan(1e-4);
    v.dispose();
    expect(() => v.decode(z)).toThrow(/disposed/);
  });
  it('validates inputs', () => {
    expect(() => vae.decode(randTensor([1, 3, 2, 2, 2], 1))).toThrow(/4 channels/);
    expect(() => vae.decode(randTensor([4, 2, 2, 2], 1))).toThrow(VaeInputError);
    expect(() => vae.decode(T.zeros([1, 4, 1, 1, 1], { dtype: 'i32' }))).toThrow(/floating point/);
    expect(() => vae.encode(randTensor([1, 3, 1, 12, 16], 1))).toThrow(/multiples of 8/);
    expect(() => vae.decode(randTensor([1, 4, 1, 1, 1], 1), { tiling: { tileSampleMinHeight: 20 } })).toThrow(/multiple/);
  });
});

describe('latent preview', () => {
  it('projects each latent channel with the FramePack factors plus bias, clamped to [0, 1]', () => {
    const z = T.zeros([1, 16, 1, 1, 3]);
    const v = z.toFloat32Array();
    v[10 * 3 + 0] = 1; // channel 10 at x=0
    v[12 * 3 + 1] = -2; // channel 12 at x=1
    const rgb = previewRgb(T.tensor(v, z.shape)).toArray(); // (1, 3, 1, 1, 3)
    const at = (c: number, x: number) => rgb[c * 3 + x];
    const clamp = (u: number) => Math.min(1, Math.max(0, u));
    for (let c = 0; c < 3; c++) {
      expect(at(c, 0)).toBeCloseTo(clamp(LATENT_RGB_FACTORS[10][c] + LATENT_RGB_BIAS[c]), 6);
      expect(at(c, 1)).toBeCloseTo(clamp(-2 * LATENT_RGB_FACTORS[12][c] + LATENT_RGB_BIAS[c]), 6);
      expect(at(c, 2)).toBeCloseTo(clamp(LATENT_RGB_BIAS[c]), 6);
    }
    expect(() => previewRgb(T.zeros([1, 4, 1, 1, 1]))).toThrow(/16 latent channels/);
  });
  it('lays frames side by side and batch rows below each other as 8-bit RGB', () => {
    // channel 10 pushes every colour up; frame 1 is brighter than frame 0
    const v = new Float32Array(2 * 16 * 2 * 1 * 1);
    const idx = (b: number, c: number, f: number) => (b * 16 + c) * 2 + f;
    v[idx(0, 10, 1)] = 3;
    v[idx(1, 10, 0)] = 1;
    const img = previewImage(T.tensor(v, [2, 16, 2, 1, 1]));
    expect([img.width, img.height]).toEqual([2, 2]);
    const rgb = previewRgb(T.tensor(v, [2, 16, 2, 1, 1])).toFloat32Array();
    const px = (b: number, f: number, c: number) => Math.trunc(Math.min(255, Math.fround(rgb[((b * 3 + c) * 2 + f)] * 255)));
    for (let b = 0; b < 2; b++) for (let f = 0; f < 2; f++) for (let c = 0; c < 3; c++) expect(img.data[(b * 2 + f) * 3 + c]).toBe(px(b, f, c));
    expect(img.data[(0 * 2 + 1) * 3]).toBeGreaterThan(img.data[0]);
  });
});
