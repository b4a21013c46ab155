/**
 * The generator as the queue's job runner: the parameter schema a job accepts (the CLI's options, as JSON), and a
 * runner that keeps the loaded models between jobs with the same model options and writes each job's video under
 * the output folder (progressively, as .partial until the job completes).
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { JobRunner } from '@framepack/queue';
import { GeneratorError } from './errors.js';
import { HunyuanVideoGenerator } from './generator.js';
import { partialPath } from './job-output.js';
import { DEFAULTS, resolveParams, type GenerateParams } from './params.js';
import { largestBucket, type LoadOptions } from './components.js';

export interface QueueJobParams extends Partial<GenerateParams> {
  prompt: string;
  /** Output MP4 (default: <output folder>/job-<id>.mp4). */
  out?: string;
  tiny?: boolean;
  device?: 'cpu' | 'cuda';
  /** Device-memory budget in GiB (CUDA): the models are loaded under a memory plan for this job's shape. */
  vramBudget?: number;
  loras?: { path: string; weight: number }[];
}

const GENERATE_KEYS = new Set<string>(['prompt', 'image', 'endImage', ...Object.keys(DEFAULTS)]);
const MODEL_KEYS = new Set(['out', 'tiny', 'device', 'vramBudget', 'loras']);

/** Check a submitted job the way the CLI checks its options; errors name the parameter. */
export function validateJobParams(raw: unknown): QueueJobParams {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GeneratorError('job parameters must be a JSON object', 'BAD_PARAMS');
  const p = raw as Record<string, unknown>;
  for (const k of Object.keys(p)) {
    if (!GENERATE_KEYS.has(k) && !MODEL_KEYS.has(k)) throw new GeneratorError(`unknown parameter '${k}' (known: ${[...GENERATE_KEYS, ...MODEL_KEYS].join(', ')})`, 'BAD_PARAMS', { param: k });
  }
  const gen = Object.fromEntries(Object.entries(p).filter(([k]) => GENERATE_KEYS.has(k))) as Partial<GenerateParams>;
  const resolved = resolveParams(gen);
  for (const k of ['image', 'endImage'] as const) {
    const v = resolved[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !existsSync(v)) throw new GeneratorError(`${k}: no such file ${JSON.stringify(v)} (give a path the worker can read, or upload the file)`, 'BAD_PARAMS', { param: k });
    resolved[k] = resolve(v); // a worker may run in another folder
  }
  if (p.out !== undefined && (typeof p.out !== 'string' || !p.out.endsWith('.mp4'))) throw new GeneratorError('out must be a path ending in .mp4', 'BAD_PARAMS', { param: 'out' });
  if (p.tiny !== undefined && typeof p.tiny !== 'boolean') throw new GeneratorError('tiny must be true or false', 'BAD_PARAMS', { param: 'tiny' });
  if (p.device !== undefined && p.device !== 'cpu' && p.device !== 'cuda') throw new GeneratorError("device must be 'cpu' or 'cuda'", 'BAD_PARAMS', { param: 'device' });
  if (p.vramBudget !== undefined) {
    if (typeof p.vramBudget !== 'number' || !(p.vramBudget > 0)) throw new GeneratorError('vramBudget must be a positive number of GiB', 'BAD_PARAMS', { param: 'vramBudget' });
    if (p.device !== 'cuda') throw new GeneratorError("vramBudget applies to device 'cuda'", 'BAD_PARAMS', { param: 'vramBudget' });
  }
  if (p.loras !== undefined) {
    const ok = Array.isArray(p.loras) && p.loras.every((l) => typeof l === 'object' && l && typeof l.path === 'string' && typeof l.weight === 'number' && Number.isFinite(l.weight));
    if (!ok) throw new GeneratorError('loras must be a list of { path: string, weight: number }', 'BAD_PARAMS', { param: 'loras' });
  }
  return { ...(p as object), ...resolved } as QueueJobParams;
}

/** $FRAMEPACK_OUTPUT_DIR, else ~/.framepack/outputs. */
export function defaultOutputDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FRAMEPACK_OUTPUT_DIR || join(homedir(), '.framepack', 'outputs');
}

/** A runner for `framepack worker` / `serve`: one generator per model configuration, reused across jobs. */
export function createJobRunner(opts: { outputDir?: string } = {}): JobRunner<QueueJobParams> & { dispose(): void } {
  let loaded: { key: string; gen: HunyuanVideoGenerator } | null = null;
  const outputDir = opts.outputDir ?? defaultOutputDir();
  const runner = async (params: QueueJobParams, ctx: Parameters<JobRunner<QueueJobParams>>[1]) => {
    const load: LoadOptions = {
      tiny: !!params.tiny, mode: params.mode ?? 'original', device: params.device ?? 'cpu', loras: params.loras ?? [],
      ...(params.vramBudget !== undefined ? { vramBudgetGiB: params.vramBudget } : {}),
    };
    const key = JSON.stringify(load);
    // under a VRAM budget the plan covers a job shape: a larger job reloads the models under a plan for it
    const planFor = { resolution: params.resolution ?? DEFAULTS.resolution, window: params.window ?? DEFAULTS.window };
    const planned = loaded?.gen.memoryPlan?.job;
    const [h, w] = largestBucket(planFor.resolution);
    const outgrown = planned !== undefined && (h * w > planned.height * planned.width || planFor.window > planned.window);
    if (loaded?.key !== key || outgrown) {
      loaded?.gen.dispose();
      loaded = null;
      ctx.progress({ fraction: 0, message: 'loading models' });
      loaded = { key, gen: await HunyuanVideoGenerator.load({ ...load, planFor }) };
    }
    const out = params.out ? (isAbsolute(params.out) ? params.out : resolve(outputDir, params.out)) : join(outputDir, `job-${ctx.job.id}.mp4`);
    let recordedPartial = false;
    const { out: _o, tiny: _t, device: _d, loras: _l, vramBudget: _v, ...gen } = params;
    const result = await loaded.gen.generateToFiles(gen, {
      out,
      signal: ctx.signal,
      onProgress: (e) => ctx.progress({ fraction: e.fraction, section: e.section + 1, step: e.step, message: e.message ?? e.stage }),
      onSection: async () => {
        if (!recordedPartial) ctx.output(partialPath(out), 'partial-video');
        recordedPartial = true;
      },
    });
    for (const f of result.files) ctx.output(f, 'video');
    return { outputs: result.files };
  };
  return Object.assign(runner, { dispose: () => loaded?.gen.dispose() });
}
