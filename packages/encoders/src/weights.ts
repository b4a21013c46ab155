import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import { openCheckpoint, type TensorSource } from '@framepack/safetensors';
import { CheckpointMismatchError, EncoderConfigError } from './errors.js';

export interface LoadOptions {
  /** Compute dtype the weights are cast to on load (default f32). */
  dtype?: DType;
  device?: DeviceType;
}

/** What a model expects from a checkpoint: key -> shape, plus keys that may be present but are not used. */
export interface WeightSpec {
  /** Human name of the model, for errors. */
  what: string;
  shapes: Map<string, readonly number[]>;
  /** Prefixes a real checkpoint may put before every key (e.g. `text_model.` in older transformers saves). */
  prefixes: readonly string[];
  /** Keys that may be present and are ignored (non-persistent buffers that old saves kept, unused heads). */
  ignorable?: readonly RegExp[];
}

/** Read and parse a folder's config.json. */
export function readConfigJson(dir: string): Record<string, any> {
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new EncoderConfigError('no config.json in this folder (expected a transformers-format model folder)', dir);
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new EncoderConfigError(`config.json is not valid JSON (${(e as Error).message})`, p);
  }
}

/** Open the weights of a transformers-format folder (model.safetensors or a sharded index), or a file/index path. */
export function openWeights(path: string): TensorSource {
  return openCheckpoint(path);
}

/**
 * Match a checkpoint's keys against a spec. Returns the prefix the checkpoint uses; throws one
 * CheckpointMismatchError naming every missing, unexpected and mis-shaped key.
 */
export function validateWeights(src: TensorSource, spec: WeightSpec, sourceName: string): string {
  const keys = src.keys();
  const ignorable = spec.ignorable ?? [];
  const isIgnorable = (k: string) => ignorable.some((r) => r.test(k));
  // The prefix is chosen by which one makes the spec's keys present (a bare save has none).
  let prefix = '';
  const probe = spec.shapes.keys().next().value as string;
  for (const p of spec.prefixes) if (src.has(p + probe)) prefix = p;
  const missing: string[] = [];
  const misshaped: { key: string; expected: readonly number[]; found: readonly number[] }[] = [];
  for (const [k, shape] of spec.shapes) {
    if (!src.has(prefix + k)) {
      missing.push(prefix + k);
      continue;
    }
    const found = src.info(prefix + k).shape;
    if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) misshaped.push({ key: prefix + k, expected: shape, found });
  }
  const unexpected = keys.filter((k) => {
    const bare = k.startsWith(prefix) ? k.slice(prefix.length) : null;
    return !(bare !== null && spec.shapes.has(bare)) && !isIgnorable(bare ?? k);
  });
  if (missing.length || unexpected.length || misshaped.length) throw new CheckpointMismatchError(spec.what, sourceName, missing, unexpected, misshaped);
  return prefix;
}

/** Load the named (spec) keys, cast to the compute dtype on the target device. */
export function loadTensors(src: TensorSource, prefix: string, keys: Iterable<string>, opts: LoadOptions): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const k of keys) out.set(k, src.tensor(prefix + k, { dtype: opts.dtype ?? 'f32', device: opts.device ?? 'cpu' }));
  return out;
}

/** Config accessors that fail with the field name. */
export function num(cfg: Record<string, any>, field: string, path: string, fallback?: number): number {
  const v = cfg[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new EncoderConfigError(`config field '${field}' must be a number, got ${JSON.stringify(cfg[field])}`, path);
  return v;
}
export function posInt(cfg: Record<string, any>, field: string, path: string, fallback?: number): number {
  const v = num(cfg, field, path, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new EncoderConfigError(`config field '${field}' must be a positive integer, got ${v}`, path);
  return v;
}
