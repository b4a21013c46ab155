import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Tensor } from '@framepack/tensor-core';
import { SafetensorsError } from './errors.js';
import { type ReadOptions, SafetensorsFile, type TensorInfo, type TensorSource } from './reader.js';

/** A checkpoint split over several files by a `*.safetensors.index.json` weight map; shards open lazily. */
export class ShardedCheckpoint implements TensorSource {
  readonly metadata: Record<string, unknown>;
  readonly #map = new Map<string, string>();
  readonly #open = new Map<string, SafetensorsFile>();

  constructor(readonly indexPath: string) {
    let json: { metadata?: Record<string, unknown>; weight_map?: Record<string, string> };
    try {
      json = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new SafetensorsError(`cannot read the shard index (${(e as Error).message})`, 'E_INDEX', indexPath);
    }
    if (!json.weight_map || typeof json.weight_map !== 'object') throw new SafetensorsError('index has no weight_map', 'E_INDEX', indexPath);
    this.metadata = json.metadata ?? {};
    const dir = dirname(indexPath);
    const missing = new Set<string>();
    for (const [name, file] of Object.entries(json.weight_map)) {
      const p = join(dir, file);
      if (!existsSync(p)) missing.add(file);
      this.#map.set(name, p);
    }
    if (missing.size) throw new SafetensorsError(`shards listed in the index are missing: ${[...missing].join(', ')}`, 'E_INDEX', indexPath);
  }
  private shard(name: string): SafetensorsFile {
    const p = this.#map.get(name);
    if (!p) throw new SafetensorsError(`no tensor named '${name}' in the weight map`, 'E_MISSING', this.indexPath, name);
    let f = this.#open.get(p);
    if (!f) this.#open.set(p, (f = SafetensorsFile.open(p)));
    if (!f.has(name)) throw new SafetensorsError(`the index maps it to ${p} but that shard does not contain it`, 'E_INDEX', this.indexPath, name);
    return f;
  }
  keys(): string[] {
    return [...this.#map.keys()];
  }
  has(name: string): boolean {
    return this.#map.has(name);
  }
  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }
  tensor(name: string, opts?: ReadOptions): Tensor {
    return this.shard(name).tensor(name, opts);
  }
  readInto(name: string, dst: Uint8Array): boolean {
    return this.shard(name).readInto(name, dst);
  }
  close(): void {
    for (const f of this.#open.values()) f.close();
    this.#open.clear();
  }
}

/**
 * Open weights given as a .safetensors file, a *.safetensors.index.json, or a folder holding exactly one of
 * those (an index wins over the shards it lists).
 */
export function openCheckpoint(path: string): TensorSource {
  if (!existsSync(path)) throw new SafetensorsError('no such file or folder', 'E_IO', path);
  if (statSync(path).isDirectory()) {
    const files = readdirSync(path);
    const indexes = files.filter((f) => f.endsWith('.safetensors.index.json'));
    if (indexes.length === 1) return new ShardedCheckpoint(join(path, indexes[0]));
    const singles = files.filter((f) => f.endsWith('.safetensors'));
    if (indexes.length === 0 && singles.length === 1) return SafetensorsFile.open(join(path, singles[0]));
    throw new SafetensorsError(
      indexes.length > 1 || singles.length > 1
        ? `ambiguous: found ${[...indexes, ...singles].join(', ')}; pass the file or index to use`
        : 'no .safetensors file or .safetensors.index.json in this folder',
      'E_MISSING',
      path,
    );
  }
  if (path.endsWith('.json')) return new ShardedCheckpoint(path);
  return SafetensorsFile.open(path);
}
