import type { Tensor } from '@framepack/tensor-core';
import { LoraError } from './errors.js';
import { flatName, type ModuleIndex, type ModuleTarget } from './module-index.js';

/** Anything that can list and read tensors: a safetensors file, a checkpoint, or a plain record. */
export interface LoraTensorSource {
  keys(): string[];
  tensor(name: string): Tensor;
}
export type LoraStateDict = LoraTensorSource | Readonly<Record<string, Tensor>>;

/** One low-rank pair as stored in the file, before it is matched to the model. */
export interface LoraModule {
  /** Module name as written in the file, without the `.lora_*` suffix (`transformer.x.attn.to_q`, `lora_unet_x_attn_to_q`). */
  name: string;
  /** `dot`: a dotted module path (PEFT/diffusers, ComfyUI, musubi "other"); `flat`: a kohya `lora_unet_` name. */
  style: 'dot' | 'flat';
  /** A / lora_down: (rank, in) or (rank, in, kt, kh, kw). */
  down: Tensor;
  /** B / lora_up: (out, rank) or (out, rank, 1, 1, 1). */
  up: Tensor;
  /** The file's alpha, or null when absent (then alpha = rank, scale 1). */
  alpha: number | null;
  rank: number;
  /** The file keys this module was read from. */
  keys: string[];
}

/** A file key we recognised but cannot apply, or a module we could not place in the model. */
export interface SkippedKey {
  key: string;
  reason: string;
}

export interface ParsedLora {
  label: string;
  modules: LoraModule[];
  /** Keys that are not a usable low-rank pair (DoRA scales, LoKr, half pairs, ...). */
  skipped: SkippedKey[];
}

export type LoraFormat = 'diffusers' | 'hunyuan' | 'kohya' | 'kohya-hunyuan' | 'mixed' | 'empty';

export interface ResolvedModule {
  module: LoraModule;
  target: ModuleTarget;
}
export interface ResolvedLora {
  label: string;
  format: LoraFormat;
  resolved: ResolvedModule[];
  /** Modules of the file that target nothing in this model, and keys that were skipped while parsing. */
  unmatched: SkippedKey[];
}

const KOHYA_PREFIXES = ['lora_unet_', 'lora_transformer_'];
const KOHYA_RE = /^(lora_unet_|lora_transformer_)(.+?)\.(lora_down\.weight|lora_up\.weight|alpha)$/;
// PEFT keys may carry an adapter name: `...lora_A.default.weight`.
const DOT_RE = /^(.+?)\.(lora_A|lora_B|lora_down|lora_up)(?:\.([A-Za-z0-9_-]+))?\.weight$/;
const DOT_ALPHA_RE = /^(.+)\.alpha$/;
/** Tensors of LoRA variants this package does not apply (reported, never silently dropped). */
const UNSUPPORTED: readonly (readonly [RegExp, string])[] = [
  [/\.dora_scale$|lora_magnitude_vector/, 'DoRA magnitude vectors are not supported'],
  [/\.(hada_|lokr_|lora_mid)/, 'LoHa / LoKr / LoCon-mid tensors are not supported'],
  [/\.diff(_b)?$/, 'full-weight differences (.diff / .diff_b) are not supported'],
  [/\.lora_[AB](\.[A-Za-z0-9_-]+)?\.bias$|\.lora_(up|down)\.bias$/, 'LoRA biases are not supported'],
];
/** Dotted prefixes that trainers put in front of the module path. Tried in order, repeatedly. */
const DOT_PREFIXES = ['base_model.model.', 'model.diffusion_model.', 'diffusion_model.', 'transformer.', 'unet.', 'model.'];

function sourceOf(sd: LoraStateDict): LoraTensorSource {
  if (typeof (sd as LoraTensorSource).keys === 'function' && typeof (sd as LoraTensorSource).tensor === 'function') return sd as LoraTensorSource;
  const rec = sd as Readonly<Record<string, Tensor>>;
  return { keys: () => Object.keys(rec), tensor: (k) => rec[k] };
}

function scalarOf(t: Tensor, key: string, label: string): number {
  if (t.numel !== 1) throw new LoraError(`${key}: alpha must be a single number, got shape [${t.shape}]`, 'E_FORMAT', label);
  const v = t.item();
  if (!Number.isFinite(v) || v <= 0) throw new LoraError(`${key}: alpha must be a positive finite number, got ${v}`, 'E_FORMAT', label);
  return v;
}

/**
 * Group a LoRA state dict into low-rank pairs. Model-independent: names are matched to the model later
 * by `resolveLora`. Tensors are kept as read (their file dtype); deltas are computed in f32.
 */
export function parseLora(sd: LoraStateDict, label = 'lora'): ParsedLora {
  const src = sourceOf(sd);
  type Acc = { style: 'dot' | 'flat'; down?: Tensor; up?: Tensor; alpha?: number; keys: string[] };
  const groups = new Map<string, Acc>();
  const skipped: SkippedKey[] = [];
  const acc = (name: string, style: 'dot' | 'flat') => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { style, keys: [] }));
    return g;
  };
  const keys = src.keys().filter((k) => k !== '__metadata__');
  for (const key of keys) {
    const bad = UNSUPPORTED.find(([re]) => re.test(key));
    if (bad) {
      skipped.push({ key, reason: bad[1] });
      continue;
    }
    const kohya = KOHYA_RE.exec(key);
    if (kohya) {
      const g = acc(kohya[1] + kohya[2], 'flat');
      g.keys.push(key);
      if (kohya[3] === 'alpha') g.alpha = scalarOf(src.tensor(key), key, label);
      else if (kohya[3] === 'lora_down.weight') g.down = src.tensor(key);
      else g.up = src.tensor(key);
      continue;
    }
    const dot = DOT_RE.exec(key);
    if (dot) {
      const g = acc(dot[1], 'dot');
      g.keys.push(key);
      if (dot[2] === 'lora_A' || dot[2] === 'lora_down') g.down = src.tensor(key);
      else g.up = src.tensor(key);
      continue;
    }
    const alpha = DOT_ALPHA_RE.exec(key);
    if (alpha) {
      const g = acc(alpha[1], 'dot');
      g.keys.push(key);
      g.alpha = scalarOf(src.tensor(key), key, label);
      continue;
    }
    skipped.push({ key, reason: 'not a LoRA tensor name (expected .lora_A/.lora_B, .lora_down/.lora_up or .alpha)' });
  }
  const modules: LoraModule[] = [];
  for (const [name, g] of groups) {
    if (!g.down || !g.up) {
      for (const key of g.keys) skipped.push({ key, reason: g.down ? 'lora_A/down without its lora_B/up' : g.up ? 'lora_B/up without its lora_A/down' : 'alpha without a low-rank pair' });
      continue;
    }
    const rank = g.down.shape[0];
    if (g.down.ndim < 2 || g.up.ndim < 2 || g.up.shape[1] !== rank || g.up.shape.slice(2).some((d) => d !== 1)) {
      throw new LoraError(`${name}: down [${g.down.shape}] and up [${g.up.shape}] are not a low-rank pair (up must be (out, rank[, 1...]), down (rank, in...))`, 'E_SHAPE', label);
    }
    modules.push({ name, style: g.style, down: g.down, up: g.up, alpha: g.alpha ?? null, rank, keys: g.keys });
  }
  if (modules.length === 0 && keys.length > 0 && skipped.length === keys.length && skipped.every((s) => s.reason.startsWith('not a LoRA'))) {
    throw new LoraError(`no LoRA tensors found (first keys: ${keys.slice(0, 3).join(', ')}); supported: diffusers/PEFT lora_A/lora_B, kohya/musubi lora_unet_*.lora_down/lora_up/alpha, HunyuanVideo double_blocks/single_blocks`, 'E_FORMAT', label);
  }
  return { label, modules, skipped };
}

function resolveDot(name: string, index: ModuleIndex): ModuleTarget | undefined {
  let n = name;
  for (;;) {
    const hit = index.byName(n);
    if (hit) return hit;
    const p = DOT_PREFIXES.find((pre) => n.startsWith(pre));
    if (!p) return undefined;
    n = n.slice(p.length);
  }
}

function resolveFlat(name: string, index: ModuleIndex, label: string): ModuleTarget | undefined {
  const pre = KOHYA_PREFIXES.find((p) => name.startsWith(p));
  const rest = flatName(pre ? name.slice(pre.length) : name);
  const hit = index.byFlat(rest, label);
  if (hit) return hit;
  // some converters keep a flattened model prefix (`lora_unet_diffusion_model_...`); only tried after the plain lookup
  for (const p of ['diffusion_model_', 'transformer_', 'model_']) if (rest.startsWith(p)) return index.byFlat(rest.slice(p.length), label) ?? undefined;
  return undefined;
}

/** Check that a module's factors fit its target's weight shape (output rows, input dims). */
function checkFit(m: LoraModule, t: ModuleTarget, label: string): void {
  const out = m.up.shape[0];
  const inShape = m.down.shape.slice(1);
  const inNumel = inShape.reduce((a, b) => a * b, 1);
  const targetIn = t.inShape.reduce((a, b) => a * b, 1);
  if (out !== t.outFeatures) {
    throw new LoraError(`${m.name} -> ${t.name}: up has ${out} output rows but the model's weight(s) have ${t.outFeatures} (${t.parts.map((p) => p.key).join(' + ')}); the LoRA was trained for a different model size`, 'E_SHAPE', label);
  }
  const sameIn = inShape.length === t.inShape.length ? inShape.every((d, i) => d === t.inShape[i]) : inShape.length === 1 && inNumel === targetIn;
  if (!sameIn) {
    throw new LoraError(`${m.name} -> ${t.name}: down has input shape [${inShape}] but the model's weight expects [${t.inShape}]`, 'E_SHAPE', label);
  }
}

function formatOf(rs: readonly ResolvedModule[]): LoraFormat {
  const kinds = new Set(rs.map((r) => `${r.module.style}:${r.target.naming}`));
  if (kinds.size === 0) return 'empty';
  if (kinds.size > 1) return 'mixed';
  const [k] = kinds;
  return ({ 'dot:packed': 'diffusers', 'dot:original': 'hunyuan', 'flat:packed': 'kohya', 'flat:original': 'kohya-hunyuan' } as const)[k as 'dot:packed'];
}

/** Match every module of a parsed LoRA to the model's modules. Unmatched modules are reported, not dropped silently. */
export function resolveLora(parsed: ParsedLora, index: ModuleIndex): ResolvedLora {
  const resolved: ResolvedModule[] = [];
  const unmatched: SkippedKey[] = [...parsed.skipped];
  for (const m of parsed.modules) {
    const target = m.style === 'dot' ? resolveDot(m.name, index) : resolveFlat(m.name, index, parsed.label);
    if (!target) {
      unmatched.push({ key: m.name, reason: 'no module of this name in the model' });
      continue;
    }
    checkFit(m, target, parsed.label);
    resolved.push({ module: m, target });
  }
  return { label: parsed.label, format: formatOf(resolved), resolved, unmatched };
}
