import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative, sep } from 'node:path';
import { openSafetensors } from '@framepack/safetensors';
import type { Tensor } from '@framepack/tensor-core';
import { LoraError } from './errors.js';
import { parseLora, type ParsedLora } from './formats.js';

/** Read a LoRA .safetensors file (every tensor, in its file dtype, on the CPU) and group it into low-rank pairs. */
export function loadLora(path: string, label = basename(path, extname(path))): ParsedLora {
  if (extname(path).toLowerCase() !== '.safetensors') {
    throw new LoraError(`${path}: only .safetensors LoRA files are supported (convert .pt/.ckpt files first; pickles can run code)`, 'E_FORMAT', label);
  }
  const f = openSafetensors(path);
  try {
    const tensors: Record<string, Tensor> = {};
    for (const k of f.keys()) tensors[k] = f.tensor(k);
    return parseLora(tensors, label);
  } finally {
    f.close();
  }
}

export interface LoraFileEntry {
  /** Path relative to the folder, without extension, `/`-separated (`styles/ghibli`). */
  name: string;
  path: string;
  bytes: number;
}

/** Every `.safetensors` file under `dir` (recursive), sorted by name. */
export function listLoras(dir: string): LoraFileEntry[] {
  const out: LoraFileEntry[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && extname(e.name).toLowerCase() === '.safetensors') {
        const rel = relative(dir, p);
        out.push({ name: rel.slice(0, -extname(rel).length).split(sep).join('/'), path: p, bytes: statSync(p).size });
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
