/**
 * The full-size random-weights family: FramePack's real architectures and sizes (the 13B packed DiT, LLaMA-3-8B,
 * CLIP-L, SigLIP so400m, the HunyuanVideo VAE) with deterministic pseudo-random weights, written into a Hugging
 * Face cache in the layout `framepack generate` resolves, so the real code path runs at the real sizes without the
 * real checkpoints (~43 GB). The weights follow the tiny family's recipe (tiny/family.ts: norms 1, biases 0,
 * projections N(0, 1/fan_in)) so activations stay finite through every block; their video is not meaningful.
 *
 * Writing is streamed and parallel: every file's header and size are laid out first, then worker threads fill
 * fixed-size chunks of each tensor (seeded by the tensor name and the chunk index, so the bytes do not depend on
 * the thread count) and write them in place. Host memory: one chunk per thread.
 */
import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { framepackComponents } from '@framepack/hub';
import { modelShapesFromConfigs } from './model-sizes.js';
import { FAMILY_COMPONENTS, parameterInit, seedFor, tinyConfigs, writeFamilyConfigs, type FamilyConfigs } from './tiny/family.js';
import { clipTokenizerFiles, llamaTokenizerFiles } from './tiny/tokenizer-files.js';
import { GeneratorError } from './errors.js';

/** Bump when the configs or the weight recipe change (it is the snapshot's revision). */
export const FULL_FAMILY_VERSION = 1;
export const FULL_FAMILY_SEED = 20251124;

/** The released checkpoints' configs (research/framepack-spec.md sections 1.1, 5 and 6). */
export const fullSizeConfigs: FamilyConfigs = {
  transformer: {
    ...tinyConfigs.transformer,
    num_attention_heads: 24, attention_head_dim: 128, num_layers: 20, num_single_layers: 40, num_refiner_layers: 2,
    text_embed_dim: 4096, pooled_projection_dim: 768, rope_axes_dim: [16, 56, 56], image_proj_dim: 1152,
  },
  vae: { ...tinyConfigs.vae, block_out_channels: [128, 256, 512, 512], layers_per_block: 2, norm_num_groups: 32 },
  text_encoder: {
    ...tinyConfigs.text_encoder,
    vocab_size: 128320, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 8192, bos_token_id: 128000, eos_token_id: 128001,
  },
  text_encoder_2: {
    ...tinyConfigs.text_encoder_2,
    vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, projection_dim: 768, num_hidden_layers: 12, num_attention_heads: 12,
  },
  image_encoder: {
    ...tinyConfigs.image_encoder,
    hidden_size: 1152, intermediate_size: 4304, num_hidden_layers: 27, num_attention_heads: 16, image_size: 384, patch_size: 14,
  },
  feature_extractor: { ...tinyConfigs.feature_extractor, size: { height: 384, width: 384 } },
};

/**
 * The same architectures shrunk in depth and width (real vocabularies, head sizes, image size and VAE structure)
 * for a CPU rehearsal of the device scripts.
 */
export const smallConfigs: FamilyConfigs = {
  transformer: { ...fullSizeConfigs.transformer, num_attention_heads: 1, num_layers: 2, num_single_layers: 2, num_refiner_layers: 1, text_embed_dim: 256, pooled_projection_dim: 64, image_proj_dim: 72 },
  vae: { ...fullSizeConfigs.vae, block_out_channels: [32, 32, 64, 64], layers_per_block: 1, norm_num_groups: 32 },
  text_encoder: { ...fullSizeConfigs.text_encoder, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 2, num_key_value_heads: 1 },
  text_encoder_2: { ...fullSizeConfigs.text_encoder_2, hidden_size: 64, intermediate_size: 128, projection_dim: 64, num_hidden_layers: 2, num_attention_heads: 1 },
  image_encoder: { ...fullSizeConfigs.image_encoder, hidden_size: 72, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 1 },
  feature_extractor: fullSizeConfigs.feature_extractor,
};

export type FamilyScale = 'full' | 'small';
export const familyConfigs = (scale: FamilyScale): FamilyConfigs => (scale === 'full' ? fullSizeConfigs : smallConfigs);

/** Elements per filled chunk: part of the seed, so changing it changes the weights (bump the version). */
export const CHUNK_ELEMENTS = 1 << 24;

export interface WriteFamilyOptions {
  /** The Hugging Face home: files go to `<hfHome>/hub/models--*` (what $HF_HOME points the generator at). */
  hfHome: string;
  scale?: FamilyScale;
  /** Which transformer repo the DiT is written as. */
  mode?: 'original' | 'f1';
  seed?: number;
  /** Worker threads filling chunks (default: the machine's parallelism). */
  threads?: number;
  /**
   * A folder with the real LLaMA-3 `tokenizer.json` + `tokenizer_config.json` (crop_start 95 holds only for it);
   * without one the tiny family's byte-level tokenizer is written (its ids fit the real vocabulary).
   */
  llamaTokenizerDir?: string;
  /** Headers and file sizes only (sparse files, no weights): enough for `framepack models plan`. */
  headersOnly?: boolean;
  onProgress?(done: number, total: number): void;
}

export interface WrittenFamily {
  hfHome: string;
  revision: string;
  files: string[];
  bytes: number;
  parameters: Record<string, number>;
  seconds: number;
}

/** Write a family (idempotent: a folder with a matching COMPLETE marker is reused). */
export async function writeFullSizeFamily(opts: WriteFamilyOptions): Promise<WrittenFamily> {
  const t0 = performance.now();
  const scale = opts.scale ?? 'full';
  const seed = opts.seed ?? FULL_FAMILY_SEED;
  const configs = familyConfigs(scale);
  const revision = familyRevision(scale, seed, !!opts.headersOnly);
  const cache = join(opts.hfHome, 'hub');
  const comps = framepackComponents(opts.mode ?? 'original');
  const folderOf = (name: string) => {
    const c = comps.find((x) => x.name === name);
    if (!c) throw new GeneratorError(`internal: no hub component named ${name}`, 'BAD_PARAMS');
    const root = join(cache, `models--${c.repo.replace('/', '--')}`);
    mkdirSync(join(root, 'refs'), { recursive: true });
    writeFileSync(join(root, 'refs', 'main'), revision);
    return join(root, 'snapshots', revision, c.subfolder);
  };
  const marker = join(cache, `framepack-full-family-${revision}.COMPLETE`);
  const shapes = modelShapesFromConfigs(configs);

  // 1. configs, tokenizers, and every file laid out (header written, size set) with its fill tasks
  writeFamilyConfigs(configs, folderOf);
  writeTokenizers(folderOf('tokenizer'), folderOf('tokenizer_2'), opts.llamaTokenizerDir);
  const tasks: FillTask[] = [];
  const files: string[] = [];
  const parameters: Record<string, number> = {};
  let bytes = 0;
  for (const c of FAMILY_COMPONENTS) {
    const path = join(folderOf(c.folder), c.file);
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', framepack_full_family: `${FULL_FAMILY_VERSION}/${scale}/${seed}` } };
    const entries: { name: string; shape: readonly number[]; begin: number; numel: number }[] = [];
    let offset = 0;
    for (const [key, shape] of shapes[c.part].shapes) {
      const name = c.prefix + key;
      const numel = shape.reduce((a, b) => a * b, 1);
      header[name] = { dtype: c.dtype === 'bf16' ? 'BF16' : 'F16', shape: [...shape], data_offsets: [offset, offset + 2 * numel] };
      entries.push({ name, shape, begin: offset, numel });
      offset += 2 * numel;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
    const hb = Buffer.from(json, 'utf8');
    const dataStart = 8 + hb.length;
    parameters[c.folder] = entries.reduce((a, e) => a + e.numel, 0);
    files.push(path);
    bytes += dataStart + offset;
    if (existsSync(marker)) continue;
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    rmSync(path, { force: true });
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, len, 0, 8, 0);
      writeSync(fd, hb, 0, hb.length, 8);
      ftruncateSync(fd, dataStart + offset);
    } finally {
      closeSync(fd);
    }
    if (opts.headersOnly) continue;
    for (const e of entries) {
      const init = parameterInit(e.name, e.shape);
      const tensorSeed = seedFor(e.name, seed);
      for (let i = 0, chunk = 0; i < e.numel; i += CHUNK_ELEMENTS, chunk++) {
        tasks.push({
          path, position: dataStart + e.begin + 2 * i, count: Math.min(CHUNK_ELEMENTS, e.numel - i), dtype: c.dtype === 'bf16' ? 'bf16' : 'f16',
          kind: init.kind, std: init.kind === 'normal' ? init.std : 0, seed: tensorSeed, chunk,
        });
      }
    }
  }
  // 2. the weights
  if (!existsSync(marker)) {
    await runFillTasks(tasks, Math.max(1, opts.threads ?? availableParallelism()), opts.onProgress);
    writeFileSync(marker, `framepack full-size random family v${FULL_FAMILY_VERSION} ${scale} seed ${seed}${opts.headersOnly ? ' (headers only)' : ''}\n`);
  }
  return { hfHome: opts.hfHome, revision, files, bytes, parameters, seconds: (performance.now() - t0) / 1000 };
}

/** A 40-hex snapshot name that encodes the version, scale and seed (HF revisions are commit hashes). */
export function familyRevision(scale: FamilyScale, seed: number, headersOnly: boolean): string {
  const tag = `${FULL_FAMILY_VERSION.toString(16).padStart(4, '0')}${scale === 'full' ? 'f' : '5'}${headersOnly ? 'e' : 'd'}${(seed >>> 0).toString(16).padStart(8, '0')}`;
  return `fa${tag}`.padEnd(40, '0');
}

function writeTokenizers(llamaDir: string, clipDir: string, realLlama: string | undefined): void {
  mkdirSync(llamaDir, { recursive: true });
  mkdirSync(clipDir, { recursive: true });
  if (realLlama) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(join(realLlama, f))) throw new GeneratorError(`no ${f} in ${realLlama} (the LLaMA-3 tokenizer folder)`, 'BAD_PARAMS');
    }
    copyFileSync(join(realLlama, 'tokenizer.json'), join(llamaDir, 'tokenizer.json'));
    // the base LLaMA-3 config names no pad token; HunyuanVideo pads the prompt to 256 (as the tiny family, with eos)
    const config = JSON.parse(readFileSync(join(realLlama, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    config.pad_token ??= '<|end_of_text|>';
    writeFileSync(join(llamaDir, 'tokenizer_config.json'), JSON.stringify(config));
  } else {
    for (const [f, content] of Object.entries(llamaTokenizerFiles())) writeFileSync(join(llamaDir, f), JSON.stringify(content));
  }
  for (const [f, content] of Object.entries(clipTokenizerFiles())) writeFileSync(join(clipDir, f), typeof content === 'string' ? content : JSON.stringify(content));
}

/** One chunk of one tensor: where it goes and how it is drawn. */
export interface FillTask {
  path: string;
  position: number;
  count: number;
  dtype: 'bf16' | 'f16';
  kind: 'zeros' | 'ones' | 'normal';
  std: number;
  seed: number;
  chunk: number;
}

/**
 * The worker's source (an eval'd CommonJS script, so it runs the same from the TypeScript sources and from a
 * bundle). Normals come from a 65536-entry inverse-CDF table (every bf16/f16 level of a normal is reachable; far
 * faster than Box-Muller) indexed by 16-bit halves of an xorshift32 stream seeded from (tensor seed, chunk).
 */
export const FILL_WORKER_SOURCE = String.raw`
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
${fillChunk.toString()}
${encodeHalf.toString()}
${inverseNormal.toString()}
const fds = new Map();
const tables = new Map();
let out = null;
parentPort.on('message', (task) => {
  if (task === null) { for (const fd of fds.values()) fs.closeSync(fd); parentPort.postMessage(null); return; }
  let fd = fds.get(task.path);
  if (fd === undefined) { fd = fs.openSync(task.path, 'r+'); fds.set(task.path, fd); }
  if (!out || out.length < task.count) out = new Uint16Array(task.count);
  const view = out.subarray(0, task.count);
  fillChunk(view, task, tables, encodeHalf, inverseNormal);
  let done = 0;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, task.position + done);
  parentPort.postMessage(task.count);
});
`;

/** Fill `out` with a task's 16-bit values (pure: also used in-process by the tests). */
export function fillChunk(
  out: Uint16Array,
  task: Pick<FillTask, 'dtype' | 'kind' | 'std' | 'seed' | 'chunk'>,
  tables: Map<string, Uint16Array>,
  encode: (x: number, dtype: 'bf16' | 'f16') => number,
  invNormal: (p: number) => number,
): void {
  if (task.kind !== 'normal') {
    out.fill(task.kind === 'zeros' ? 0 : encode(1, task.dtype));
    return;
  }
  const key = task.dtype + ':' + task.std;
  let table = tables.get(key);
  if (!table) {
    table = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = encode(invNormal((i + 0.5) / 65536) * task.std, task.dtype);
    tables.set(key, table);
  }
  // splitmix-style mix of (seed, chunk) into a nonzero xorshift32 state
  let s = Math.imul((task.seed ^ Math.imul(task.chunk + 1, 0x9e3779b9)) >>> 0, 0x85ebca6b) >>> 0;
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0;
  s = (s ^ (s >>> 16)) >>> 0 || 0x6d2b79f5;
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = table[s & 0xffff];
    out[i + 1] = table[s >>> 16];
  }
  if (i < n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = table[s & 0xffff];
  }
}

/** f32 -> bf16 / f16 bits, round to nearest even (f16: subnormals, overflow to inf). */
export function encodeHalf(x: number, dtype: 'bf16' | 'f16'): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  if (dtype === 'bf16') return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  if (r === 0x400) {
    r = 0;
    e++;
    if (e >= 0x1f) return sign | 0x7c00;
  }
  return sign | (e << 10) | r;
}

/** Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function inverseNormal(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Run the fill tasks on `threads` workers, largest first. */
async function runFillTasks(tasks: FillTask[], threads: number, onProgress?: (done: number, total: number) => void): Promise<void> {
  const total = tasks.reduce((a, t) => a + t.count, 0);
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: Math.min(threads, Math.max(1, tasks.length)) }, () => new Worker(FILL_WORKER_SOURCE, { eval: true }));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.on('error', reject);
            w.on('exit', (code) => (code === 0 ? resolve() : reject(new GeneratorError(`a weight-filling worker exited with code ${code}`, 'OUTPUT'))));
            w.on('message', (m: number | null) => {
              if (m === null) {
                resolve();
                return;
              }
              done += m;
              onProgress?.(done, total);
              if (next < tasks.length) w.postMessage(tasks[next++]);
              else w.postMessage(null);
            });
            if (next < tasks.length) w.postMessage(tasks[next++]);
            else w.postMessage(null);
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
