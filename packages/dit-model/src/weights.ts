import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import type { TensorSource } from '@framepack/safetensors';
import { type DiTConfig, innerDim, mlpDim, refinerMlpDim } from './config.js';
import { DiTWeightsError } from './errors.js';

export interface WeightLoadOptions {
  /** Storage dtype of the model (default: the checkpoint's dtype of x_embedder.proj.weight). */
  dtype?: DType;
  device?: DeviceType;
}

const linear = (m: Map<string, number[]>, name: string, out: number, inp: number, bias = true) => {
  m.set(`${name}.weight`, [out, inp]);
  if (bias) m.set(`${name}.bias`, [out]);
};
const conv = (m: Map<string, number[]>, name: string, out: number, inp: number, k: number[]) => {
  m.set(`${name}.weight`, [out, inp, ...k]);
  m.set(`${name}.bias`, [out]);
};

/** Every state-dict key of the reference module for this config, with its shape. */
export function expectedWeightShapes(c: DiTConfig): Map<string, number[]> {
  const D = innerDim(c), F = mlpDim(c), Fr = refinerMlpDim(c), hd = c.attentionHeadDim;
  const m = new Map<string, number[]>();
  conv(m, 'x_embedder.proj', D, c.inChannels, [c.patchSizeT, c.patchSize, c.patchSize]);
  if (c.hasCleanXEmbedder) {
    conv(m, 'clean_x_embedder.proj', D, 16, [1, 2, 2]);
    conv(m, 'clean_x_embedder.proj_2x', D, 16, [2, 4, 4]);
    conv(m, 'clean_x_embedder.proj_4x', D, 16, [4, 8, 8]);
  }
  if (c.hasImageProj) {
    linear(m, 'image_projection.up', D * 3, c.imageProjDim);
    linear(m, 'image_projection.down', D, D * 3);
  }
  for (const e of ['timestep_embedder', 'guidance_embedder']) {
    linear(m, `time_text_embed.${e}.linear_1`, D, 256);
    linear(m, `time_text_embed.${e}.linear_2`, D, D);
  }
  linear(m, 'time_text_embed.text_embedder.linear_1', D, c.pooledProjectionDim);
  linear(m, 'time_text_embed.text_embedder.linear_2', D, D);
  const ce = 'context_embedder';
  linear(m, `${ce}.time_text_embed.timestep_embedder.linear_1`, D, 256);
  linear(m, `${ce}.time_text_embed.timestep_embedder.linear_2`, D, D);
  linear(m, `${ce}.time_text_embed.text_embedder.linear_1`, D, c.textEmbedDim);
  linear(m, `${ce}.time_text_embed.text_embedder.linear_2`, D, D);
  linear(m, `${ce}.proj_in`, D, c.textEmbedDim);
  for (let i = 0; i < c.numRefinerLayers; i++) {
    const p = `${ce}.token_refiner.refiner_blocks.${i}`;
    for (const n of ['norm1', 'norm2']) {
      m.set(`${p}.${n}.weight`, [D]);
      m.set(`${p}.${n}.bias`, [D]);
    }
    for (const n of ['to_q', 'to_k', 'to_v', 'to_out.0']) linear(m, `${p}.attn.${n}`, D, D);
    linear(m, `${p}.ff.net.0.proj`, Fr, D);
    linear(m, `${p}.ff.net.2`, D, Fr);
    linear(m, `${p}.norm_out.linear`, 2 * D, D);
  }
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer_blocks.${i}`;
    linear(m, `${p}.norm1.linear`, 6 * D, D);
    linear(m, `${p}.norm1_context.linear`, 6 * D, D);
    for (const n of ['to_q', 'to_k', 'to_v', 'add_q_proj', 'add_k_proj', 'add_v_proj', 'to_out.0', 'to_add_out']) linear(m, `${p}.attn.${n}`, D, D);
    for (const n of ['norm_q', 'norm_k', 'norm_added_q', 'norm_added_k']) m.set(`${p}.attn.${n}.weight`, [hd]);
    for (const ff of ['ff', 'ff_context']) {
      linear(m, `${p}.${ff}.net.0.proj`, F, D);
      linear(m, `${p}.${ff}.net.2`, D, F);
    }
  }
  for (let i = 0; i < c.numSingleLayers; i++) {
    const p = `single_transformer_blocks.${i}`;
    for (const n of ['to_q', 'to_k', 'to_v']) linear(m, `${p}.attn.${n}`, D, D);
    for (const n of ['norm_q', 'norm_k']) m.set(`${p}.attn.${n}.weight`, [hd]);
    linear(m, `${p}.norm.linear`, 3 * D, D);
    linear(m, `${p}.proj_mlp`, F, D);
    linear(m, `${p}.proj_out`, D, D + F);
  }
  linear(m, 'norm_out.linear', 2 * D, D);
  linear(m, 'proj_out', c.patchSizeT * c.patchSize * c.patchSize * c.outChannels, D);
  return m;
}

/** Compare available keys/shapes with the expected ones; one error lists every problem. */
export function checkWeightKeys(available: ReadonlyMap<string, readonly number[]>, expected: ReadonlyMap<string, readonly number[]>, where = 'weights'): void {
  const missing = [...expected.keys()].filter((k) => !available.has(k));
  const unexpected = [...available.keys()].filter((k) => !expected.has(k));
  const misShaped = [...expected.entries()]
    .filter(([k, s]) => available.has(k) && !sameShape(available.get(k)!, s))
    .map(([k, s]) => `${k}: [${available.get(k)!.join(', ')}] (expected [${s.join(', ')}])`);
  if (!missing.length && !unexpected.length && !misShaped.length) return;
  const list = (title: string, xs: string[]) => (xs.length ? `\n  ${title} (${xs.length}): ${xs.slice(0, 20).join(', ')}${xs.length > 20 ? `, ... ${xs.length - 20} more` : ''}` : '');
  throw new DiTWeightsError(
    `${where} do not match the DiT config (check that the checkpoint and config.json belong together):` +
      list('missing', missing) + list('unexpected', unexpected) + list('mis-shaped', misShaped),
    missing, unexpected, misShaped,
  );
}
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Named parameters under a key prefix (module-like access: `p.at('attn').get('to_q.weight')`). */
export class ParamScope {
  constructor(
    private readonly store: ReadonlyMap<string, Tensor>,
    readonly prefix = '',
  ) {}
  get(name: string): Tensor {
    const key = this.prefix ? `${this.prefix}.${name}` : name;
    const t = this.store.get(key);
    if (!t) throw new DiTWeightsError(`weight ${key} is not loaded`, [key]);
    return t;
  }
  has(name: string): boolean {
    return this.store.has(this.prefix ? `${this.prefix}.${name}` : name);
  }
  at(prefix: string): ParamScope {
    return new ParamScope(this.store, this.prefix ? `${this.prefix}.${prefix}` : prefix);
  }
}

/** The model's parameters, one tensor per reference key, all in one dtype on one device. */
export class DiTWeights {
  readonly root: ParamScope;
  constructor(
    readonly tensors: Map<string, Tensor>,
    readonly dtype: DType,
    readonly device: DeviceType,
  ) {
    this.root = new ParamScope(tensors);
  }
  get numParameters(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.numel;
    return n;
  }
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

function isSource(w: unknown): w is TensorSource {
  return typeof (w as TensorSource).keys === 'function' && typeof (w as TensorSource).info === 'function' && typeof (w as TensorSource).tensor === 'function';
}

/**
 * Validate and load the weights of `config` from a safetensors source (single file or sharded checkpoint:
 * tensors are read one at a time) or from a record of tensors (cast/moved when dtype/device differ).
 */
export function loadWeights(config: DiTConfig, weights: TensorSource | Record<string, Tensor>, opts: WeightLoadOptions = {}, include: (key: string) => boolean = () => true): DiTWeights {
  const expected = validateWeights(config, weights);
  const device = opts.device ?? 'cpu';
  const dtype = resolveDType(weights, opts);
  const out = new Map<string, Tensor>();
  try {
    for (const k of expected.keys()) {
      if (!include(k)) continue;
      if (isSource(weights)) out.set(k, weights.tensor(k, { dtype, device }));
      else {
        const moved = T.toDevice(weights[k], device);
        out.set(k, T.cast(moved, dtype));
        moved.dispose();
      }
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return new DiTWeights(out, dtype, device);
}

/** Check the keys and shapes of `weights` against the config (one error listing every problem); the expected shapes. */
export function validateWeights(config: DiTConfig, weights: TensorSource | Record<string, Tensor>): Map<string, number[]> {
  const expected = expectedWeightShapes(config);
  if (isSource(weights)) checkWeightKeys(new Map(weights.keys().map((k) => [k, weights.info(k).shape])), expected, 'checkpoint weights');
  else checkWeightKeys(new Map(Object.entries(weights).map(([k, t]) => [k, [...t.shape]])), expected, 'weights');
  return expected;
}

/** The model dtype: the requested one, else the checkpoint's (x_embedder.proj.weight's). */
export function resolveDType(weights: TensorSource | Record<string, Tensor>, opts: WeightLoadOptions): DType {
  if (opts.dtype) return opts.dtype;
  return isSource(weights) ? fileDType(weights.info('x_embedder.proj.weight').dtype) : weights['x_embedder.proj.weight'].dtype;
}

function fileDType(st: string): DType {
  switch (st) {
    case 'BF16':
      return 'bf16';
    case 'F16':
      return 'f16';
    case 'F32':
      return 'f32';
    default:
      throw new DiTWeightsError(`x_embedder.proj.weight is stored as ${st}; pass an explicit float dtype to load it`);
  }
}
