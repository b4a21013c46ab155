import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DeviceType, DType } from '@framepack/tensor-core';
import { openSafetensors, type SafetensorsFile } from '@framepack/safetensors';
import { toleranceFor } from './compare.js';
import type { CaseResult, GoldenCase, GoldenKind } from './types.js';

export interface RunOptions {
  /** Kinds or case names to run (default: all). */
  only?: string[];
  device?: DeviceType;
  /** Storage dtype on the device (default f32 on cpu, bf16 on cuda). */
  dtype?: DType;
  onResult?: (r: GoldenResult) => void;
}
export interface GoldenResult extends Partial<CaseResult> {
  case: string;
  kind: string;
  status: 'pass' | 'FAIL' | 'unsupported';
  error?: string;
  seconds: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The golden cases beside the checkout (../shared/golden), or FRAMEPACK_GOLDEN_DIR. */
export function defaultGoldenDir(): string {
  return process.env.FRAMEPACK_GOLDEN_DIR ?? resolve(here, '../../../../shared/golden');
}

let kindsCache: Map<string, GoldenKind> | undefined;
/** Every kind module in src/kinds (each exports `kind`). */
export async function loadKinds(): Promise<Map<string, GoldenKind>> {
  if (kindsCache) return kindsCache;
  const dir = join(here, 'kinds');
  const m = new Map<string, GoldenKind>();
  for (const f of readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort()) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { kind?: GoldenKind };
    if (mod.kind) m.set(mod.kind.name, mod.kind);
  }
  return (kindsCache = m);
}

function openCase(dir: string, json: Record<string, any>, device: DeviceType, dtype: DType): GoldenCase {
  let tensors: SafetensorsFile | undefined;
  return {
    dir,
    name: dir.split(/[\\/]/).pop()!,
    json,
    get tensors() {
      return (tensors ??= openSafetensors(join(dir, 'tensors.safetensors')));
    },
    weightsPath(key = 'weights_from') {
      const own = join(dir, 'weights.safetensors');
      // `"weights_from": "self"` names the case's own file
      if ((json[key] === undefined || json[key] === 'self') && existsSync(own)) return own;
      if (json[key] === undefined) throw new Error(`case has no weights.safetensors and no '${key}'`);
      return join(dir, '..', String(json[key]), 'weights.safetensors');
    },
    device,
    dtype,
    tolerance: toleranceFor(json.tolerance, dtype),
  };
}

/** Run every case folder in `dir` (folders holding a case.json), one result per case, in name order. */
export async function runGoldenDir(dir: string, opts: RunOptions = {}): Promise<GoldenResult[]> {
  const kinds = await loadKinds();
  const device = opts.device ?? 'cpu';
  const dtype = opts.dtype ?? (device === 'cpu' ? 'f32' : 'bf16');
  const results: GoldenResult[] = [];
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'case.json')))
    .map((e) => e.name)
    .sort();
  for (const name of folders) {
    const caseDir = join(dir, name);
    let json: Record<string, any>;
    try {
      json = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
    } catch (e) {
      const r: GoldenResult = { case: name, kind: '?', status: 'FAIL', error: `unreadable case.json: ${(e as Error).message}`, seconds: 0 };
      results.push(r);
      opts.onResult?.(r);
      continue;
    }
    const kindName = String(json.kind);
    if (opts.only?.length && !opts.only.includes(kindName) && !opts.only.includes(name)) continue;
    const kind = kinds.get(kindName);
    const t0 = performance.now();
    let r: GoldenResult;
    if (!kind) r = { case: name, kind: kindName, status: 'unsupported', seconds: 0 };
    else {
      const c = openCase(caseDir, json, device, dtype);
      try {
        const res = await kind.run(c);
        r = { case: name, kind: kindName, ...res, status: res.pass ? 'pass' : 'FAIL', seconds: (performance.now() - t0) / 1000 };
      } catch (e) {
        r = { case: name, kind: kindName, status: 'FAIL', error: (e as Error).stack ?? String(e), seconds: (performance.now() - t0) / 1000 };
      } finally {
        try {
          c.tensors.close();
        } catch {}
      }
    }
    results.push(r);
    opts.onResult?.(r);
  }
  return results;
}

/** The one-line form: `<case> <kind> pass|FAIL|unsupported max_rel_l2=<x>`. */
export function formatResult(r: GoldenResult): string {
  const parts = [r.case, r.kind, r.status];
  if (r.metric !== undefined && r.value !== undefined) parts.push(`${r.metric}=${r.value.toExponential(3)}`);
  if (r.note) parts.push(`(${r.note})`);
  if (r.error) parts.push(`error: ${r.error.split('\n')[0]}`);
  return parts.join(' ');
}
