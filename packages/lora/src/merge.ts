import * as T from '@framepack/tensor-core';
import type { Tensor } from '@framepack/tensor-core';
import { LoraError } from './errors.js';
import { type LoraFormat, type LoraStateDict, parseLora, type ParsedLora, resolveLora, type ResolvedLora, type SkippedKey } from './formats.js';
import { ModuleIndex, type ParamShapes, type TargetPart } from './module-index.js';
import type { LoraModule } from './formats.js';

/** One LoRA to apply, with its user weight (the UI slider, usually 0..2; negative weights are allowed). */
export interface LoraSpec {
  /** A parsed LoRA, or a state dict to parse. */
  lora: ParsedLora | LoraStateDict;
  weight?: number;
  /** Label used in reports and errors (defaults to the parsed label). */
  name?: string;
}

/** A contribution of one LoRA module to one model weight. */
interface Contribution {
  lora: string;
  module: LoraModule;
  part: TargetPart;
  /** weight * alpha / rank */
  scale: number;
}

export interface LoraReportEntry {
  name: string;
  format: LoraFormat;
  weight: number;
  /** Modules applied, with the model weights each one feeds. */
  applied: { module: string; targets: string[]; rank: number; alpha: number | null; scale: number }[];
  /** Modules / keys of the file that do not apply to this model (never silently dropped). */
  unmatched: SkippedKey[];
}
export interface LoraReport {
  loras: LoraReportEntry[];
  /** Every model weight key that receives a delta, sorted. */
  targets: string[];
}

export interface StackOptions {
  /** Throw E_UNMATCHED when any LoRA has modules that match nothing in the model (default: report only). */
  strict?: boolean;
}

export interface MergeOptions {
  /**
   * What to keep for `unmerge()`:
   *  - `originals` (default): the replaced weight tensors themselves; unmerge is bit-exact.
   *  - `deltas`: nothing extra is kept; unmerge recomputes the same f32 delta and subtracts it. Saves memory,
   *    but is exact only up to rounding in the weight's dtype (W + d - d != W in finite precision).
   */
  keep?: 'originals' | 'deltas';
}

export interface MergeHandle {
  readonly keys: readonly string[];
  /** Put the pre-merge weights back into the map (disposes the merged tensors). Idempotent. */
  unmerge(): void;
}

const isParsed = (x: ParsedLora | LoraStateDict): x is ParsedLora => Array.isArray((x as ParsedLora).modules) && Array.isArray((x as ParsedLora).skipped);

/**
 * Several LoRAs bound to one model (its parameter key -> shape list). Computes per-weight deltas
 *   dW = sum_i w_i * (alpha_i / rank_i) * up_i[rows] @ down_i
 * and merges them into weights, either a whole weight map at once or one tensor at a time while blocks
 * are streamed (`mergeInto`).
 */
export class LoraStack {
  readonly report: LoraReport;
  readonly #byKey = new Map<string, Contribution[]>();
  readonly #index: ModuleIndex;
  readonly #resolved: ResolvedLora[] = [];

  constructor(model: ParamShapes | ModuleIndex, loras: readonly LoraSpec[], opts: StackOptions = {}) {
    this.#index = model instanceof ModuleIndex ? model : new ModuleIndex(model);
    const entries: LoraReportEntry[] = [];
    loras.forEach((spec, i) => {
      const weight = spec.weight ?? 1;
      const label = spec.name ?? (isParsed(spec.lora) ? spec.lora.label : `lora${i}`);
      if (!Number.isFinite(weight)) throw new LoraError(`weight must be a finite number, got ${weight}`, 'E_WEIGHT', label);
      const parsed = isParsed(spec.lora) ? spec.lora : parseLora(spec.lora, label);
      const res = resolveLora({ ...parsed, label }, this.#index);
      this.#resolved.push(res);
      if (opts.strict && res.unmatched.length > 0) {
        throw new LoraError(`${res.unmatched.length} LoRA entries do not apply to this model: ${res.unmatched.slice(0, 5).map((u) => `${u.key} (${u.reason})`).join('; ')}`, 'E_UNMATCHED', label);
      }
      const applied: LoraReportEntry['applied'] = [];
      for (const { module, target } of res.resolved) {
        // alpha/rank scaling (a file without alpha means alpha = rank, i.e. scale 1 per unit weight)
        const scale = (weight * (module.alpha ?? module.rank)) / module.rank;
        for (const part of target.parts) {
          const list = this.#byKey.get(part.key) ?? [];
          list.push({ lora: label, module, part, scale });
          this.#byKey.set(part.key, list);
        }
        applied.push({ module: module.name, targets: target.parts.map((p) => p.key), rank: module.rank, alpha: module.alpha, scale });
      }
      entries.push({ name: label, format: res.format, weight, applied, unmatched: res.unmatched });
    });
    this.report = { loras: entries, targets: [...this.#byKey.keys()].sort() };
  }

  /** Whether any LoRA changes this weight. */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }
  /** Weight keys that receive a delta. */
  get targets(): readonly string[] {
    return this.report.targets;
  }

  /** The f32 delta for one weight key on `device` (null if no LoRA targets it). The caller owns the result. */
  delta(key: string, device: T.DeviceType = 'cpu'): Tensor | null {
    const list = this.#byKey.get(key);
    if (!list) return null;
    const shape = this.#index.shapeOf(key);
    if (!shape) throw new LoraError(`weight ${key} is not in the model this stack was built for`, 'E_STATE');
    return T.tidy(() => {
      let acc: Tensor | null = null;
      for (const c of list) {
        const d = T.mul(partDelta(c, device), c.scale);
        acc = acc ? T.add(acc, d) : d;
      }
      return T.reshape(acc!, shape);
    });
  }

  /**
   * Merge hook for streamed loading: returns `weight + delta(key)` as a new tensor in `weight`'s dtype and
   * device, or `weight` itself (same object) when no LoRA targets `key`. The input is never modified.
   */
  mergeInto(key: string, weight: Tensor): Tensor {
    if (!this.#byKey.has(key)) return weight;
    const shape = this.#index.shapeOf(key)!;
    if (shape.length !== weight.ndim || shape.some((d, i) => d !== weight.shape[i])) {
      throw new LoraError(`${key}: weight has shape [${weight.shape}] but the stack was built for [${shape}]`, 'E_SHAPE');
    }
    return T.tidy(() => {
      const d = this.delta(key, weight.device)!;
      return T.cast(T.add(T.cast(weight, 'f32'), d), weight.dtype);
    });
  }

  /**
   * Merge every targeted weight of `weights` in place (the record's entries are replaced). Weights the
   * LoRAs target but the map lacks are an error (the map must be the model the stack was built for).
   */
  mergeWeights(weights: Record<string, Tensor>, opts: MergeOptions = {}): MergeHandle {
    const keep = opts.keep ?? 'originals';
    const missing = this.report.targets.filter((k) => !(k in weights));
    if (missing.length) throw new LoraError(`the weight map lacks ${missing.length} targeted weights (first: ${missing[0]})`, 'E_STATE');
    const originals = new Map<string, Tensor>();
    for (const key of this.report.targets) {
      const w = weights[key];
      const merged = this.mergeInto(key, w);
      weights[key] = merged;
      if (keep === 'originals') originals.set(key, w);
      else w.dispose();
    }
    let done = false;
    const keys = [...this.report.targets];
    return {
      keys,
      unmerge: () => {
        if (done) return;
        done = true;
        for (const key of keys) {
          const merged = weights[key];
          if (keep === 'originals') weights[key] = originals.get(key)!;
          else
            weights[key] = T.tidy(() => {
              const d = this.delta(key, merged.device)!;
              return T.cast(T.sub(T.cast(merged, 'f32'), d), merged.dtype);
            });
          merged.dispose();
        }
        originals.clear();
      },
    };
  }

  /** Release the LoRA factor tensors. */
  dispose(): void {
    for (const r of this.#resolved) for (const { module } of r.resolved) {
      module.down.dispose();
      module.up.dispose();
    }
  }
}

/** up[rows] @ down for one target part, in f32 on `device`, flattened to (out_part, in_numel). */
function partDelta(c: Contribution, device: T.DeviceType): Tensor {
  const { module: m, part } = c;
  const out = m.up.shape[0];
  const up2 = T.reshape(T.toDevice(T.cast(m.up, 'f32'), device), [out, m.rank]);
  const down2 = T.reshape(T.toDevice(T.cast(m.down, 'f32'), device), [m.rank, -1]);
  let up = up2;
  if (part.swapHalves) {
    // the original module's rows are (shift, scale); the packed weight's are (scale, shift)
    if (out % 2 !== 0) throw new LoraError(`${m.name}: cannot swap the halves of ${out} rows`, 'E_SHAPE', c.lora);
    const [shift, scale] = T.split(up2, [out / 2, out / 2], 0);
    up = T.cat([scale, shift], 0);
  }
  return T.matmul(T.slice(up, 0, part.rows[0], part.rows[1]), down2);
}
