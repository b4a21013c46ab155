import type { Tensor } from '@framepack/tensor-core';
import type { CaseResult, Metric, Tolerance } from './types.js';

/**
 * Tolerance used when a case runs with bf16/f16 storage (e.g. `--device cuda`): bf16 keeps 8 mantissa bits
 * (relative rounding 2^-9 per element), and errors from dozens of rounded layers add up to about 1e-2; we allow
 * 2e-2 rel-L2. Cases measured with max_abs (bit-exact RNG) keep their tolerance: they never run in bf16.
 */
export const HALF_PRECISION_MAX_REL_L2 = 2e-2;

export function toleranceFor(caseTolerance: Record<string, number> | undefined, storage: string): Tolerance {
  if (!caseTolerance) return { metric: 'max_abs', limit: 0 };
  if ('max_rel_l2' in caseTolerance) {
    const limit = storage === 'f32' ? caseTolerance.max_rel_l2 : Math.max(caseTolerance.max_rel_l2, HALF_PRECISION_MAX_REL_L2);
    return { metric: 'max_rel_l2', limit };
  }
  if ('max_abs' in caseTolerance) return { metric: 'max_abs', limit: caseTolerance.max_abs };
  throw new Error(`unknown tolerance ${JSON.stringify(caseTolerance)} (expected max_rel_l2 or max_abs)`);
}

type Values = Float32Array | Float64Array | number[] | Tensor;
function values(v: Values): ArrayLike<number> {
  return (v as Tensor).__isTensor ? (v as Tensor).toFloat32Array() : (v as ArrayLike<number>);
}

/** ||ours - ref||_2 / ||ref||_2 (NaN anywhere gives NaN, which never passes). When ref is all zeros, ||ours||_2. */
export function relL2(ours: Values, ref: Values): number {
  const a = values(ours), b = values(ref);
  if (a.length !== b.length) throw new Error(`length mismatch: ours ${a.length} vs reference ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
export function maxAbs(ours: Values, ref: Values): number {
  const a = values(ours), b = values(ref);
  if (a.length !== b.length) throw new Error(`length mismatch: ours ${a.length} vs reference ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}
export function measure(metric: Metric, ours: Values, ref: Values): number {
  return metric === 'max_rel_l2' ? relL2(ours, ref) : maxAbs(ours, ref);
}

/** Compare named outputs with the case tolerance: the result carries the worst error and each output's error. */
export function compareOutputs(pairs: Record<string, { ours: Values; ref: Values }>, tol: Tolerance): CaseResult {
  const details: Record<string, number> = {};
  let worst = 0;
  for (const [name, { ours, ref }] of Object.entries(pairs)) {
    const e = measure(tol.metric, ours, ref);
    details[name] = e;
    if (!(e <= worst)) worst = e;
  }
  return { metric: tol.metric, value: worst, pass: worst <= tol.limit, details };
}

/** A result for checks that are exact (e.g. the same skipped steps): a mismatch fails whatever the numbers. */
export function withExactCheck(r: CaseResult, ok: boolean, what: string): CaseResult {
  return ok ? r : { ...r, pass: false, note: [r.note, `${what} differ`].filter(Boolean).join('; ') };
}

/**
 * The dtype the reference's transformer ran in: case.json `dtype`, else float32 (every case was computed in float32,
 * see ../shared/golden/README.md). Samplers round their model inputs (x, timestep, guidance) to it, as fm_wrapper
 * does; it is the reference's choice and stays f32 when we store weights in bf16 (c.dtype), otherwise a bf16 run
 * would feed guidance 9984 where the reference fed 10000 and measure that instead of our storage error.
 */
export function referenceModelDType(json: Record<string, unknown>): 'f32' | 'bf16' | 'f16' {
  const d = json.dtype;
  if (d === undefined || d === 'float32') return 'f32';
  if (d === 'bfloat16') return 'bf16';
  if (d === 'float16') return 'f16';
  throw new Error(`case.json dtype ${JSON.stringify(d)} is not a transformer dtype`);
}
