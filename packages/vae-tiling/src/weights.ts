import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import { openCheckpoint, type TensorSource } from '@framepack/safetensors';
import { configFromDiffusers, type HunyuanVideoVaeConfig, vaeLayout } from './config.js';
import { VaeConfigError, VaeWeightsError, type MisShapedKey } from './errors.js';

export type VaeWeights = Map<string, Tensor>;

function addConv(m: Map<string, number[]>, name: string, cout: number, cin: number, k: number): void {
  m.set(`${name}.weight`, [cout, cin, k, k, k]);
  m.set(`${name}.bias`, [cout]);
}
function addNorm(m: Map<string, number[]>, name: string, c: number): void {
  m.set(`${name}.weight`, [c]);
  m.set(`${name}.bias`, [c]);
}
function addResnet(m: Map<string, number[]>, p: string, cin: number, cout: number): void {
  addNorm(m, `${p}.norm1`, cin);
  addConv(m, `${p}.conv1.conv`, cout, cin, 3);
  addNorm(m, `${p}.norm2`, cout);
  addConv(m, `${p}.conv2.conv`, cout, cout, 3);
  if (cin !== cout) addConv(m, `${p}.conv_shortcut.conv`, cout, cin, 1);
}
function addMid(m: Map<string, number[]>, p: string, c: number, attention: boolean): void {
  addResnet(m, `${p}.resnets.0`, c, c);
  if (attention) {
    addNorm(m, `${p}.attentions.0.group_norm`, c);
    for (const l of ['to_q', 'to_k', 'to_v', 'to_out.0']) {
      m.set(`${p}.attentions.0.${l}.weight`, [c, c]);
      m.set(`${p}.attentions.0.${l}.bias`, [c]);
    }
  }
  addResnet(m, `${p}.resnets.1`, c, c);
}

/** Every parameter the config implies, under diffusers' state-dict names, with its shape. */
export function expectedParameters(c: HunyuanVideoVaeConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { down, up } = vaeLayout(c);
  const boc = c.blockOutChannels;
  const top = boc[boc.length - 1];
  addConv(m, 'encoder.conv_in.conv', boc[0], c.inChannels, 3);
  down.forEach((b, i) => {
    for (let j = 0; j < b.numLayers; j++) addResnet(m, `encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? b.inChannels : b.outChannels, b.outChannels);
    if (b.downsampleStride) addConv(m, `encoder.down_blocks.${i}.downsamplers.0.conv.conv`, b.outChannels, b.outChannels, 3);
  });
  addMid(m, 'encoder.mid_block', top, c.midBlockAddAttention);
  addNorm(m, 'encoder.conv_norm_out', top);
  addConv(m, 'encoder.conv_out.conv', 2 * c.latentChannels, top, 3);
  addConv(m, 'quant_conv', 2 * c.latentChannels, 2 * c.latentChannels, 1);
  addConv(m, 'post_quant_conv', c.latentChannels, c.latentChannels, 1);
  addConv(m, 'decoder.conv_in.conv', top, c.latentChannels, 3);
  addMid(m, 'decoder.mid_block', top, c.midBlockAddAttention);
  up.forEach((b, i) => {
    for (let j = 0; j < b.numLayers; j++) addResnet(m, `decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? b.inChannels : b.outChannels, b.outChannels);
    if (b.upsampleFactor) addConv(m, `decoder.up_blocks.${i}.upsamplers.0.conv.conv`, b.outChannels, b.outChannels, 3);
  });
  addNorm(m, 'decoder.conv_norm_out', boc[0]);
  addConv(m, 'decoder.conv_out.conv', c.outChannels, boc[0], 3);
  return m;
}

export interface LoadOptions {
  /** Storage dtype of the loaded weights (default: f32). */
  dtype?: DType;
  device?: DeviceType;
}

/** Check every key and shape first (one error listing all problems), then read the tensors one at a time. */
export function loadWeights(source: TensorSource, config: HunyuanVideoVaeConfig, label: string, opts: LoadOptions = {}): VaeWeights {
  const expected = expectedParameters(config);
  const keys = new Set(source.keys());
  const missing = [...expected.keys()].filter((k) => !keys.has(k)).sort();
  const unexpected = [...keys].filter((k) => !expected.has(k)).sort();
  const misShaped: MisShapedKey[] = [];
  for (const [k, shape] of expected) {
    if (!keys.has(k)) continue;
    const found = source.info(k).shape;
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) misShaped.push({ key: k, expected: shape, found: [...found] });
  }
  if (missing.length || unexpected.length || misShaped.length) throw new VaeWeightsError(label, missing, unexpected, misShaped);
  const out: VaeWeights = new Map();
  try {
    for (const k of expected.keys()) out.set(k, source.tensor(k, { dtype: opts.dtype ?? 'f32', device: opts.device ?? 'cpu' }));
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return out;
}

/**
 * A diffusers model folder (config.json + diffusion_pytorch_model.safetensors, or a sharded
 * *.safetensors.index.json), e.g. the `vae/` folder of hunyuanvideo-community/HunyuanVideo.
 */
export function readPretrained(dir: string, opts: LoadOptions = {}): { config: HunyuanVideoVaeConfig; weights: VaeWeights } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new VaeConfigError(`${dir} is not a folder; pass the diffusers VAE folder holding config.json and the safetensors weights`);
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw new VaeConfigError(`${dir} has no config.json (a diffusers VAE folder holds config.json + diffusion_pytorch_model.safetensors)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new VaeConfigError(`${cfgPath} is not valid JSON (${(e as Error).message})`);
  }
  const config = configFromDiffusers(json);
  const source = openCheckpoint(dir);
  try {
    return { config, weights: loadWeights(source, config, dir, opts) };
  } finally {
    source.close();
  }
}
