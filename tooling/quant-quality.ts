/**
 * Quality cost of 8-bit streamed DiT weights (`--stream-weights int8|fp8`): one full section through the generator
 * (text/image encode, VAE encode, the sampler's every step, decode) with the same seed, once with the streamed blocks
 * in bf16 and once per 8-bit format; prints one JSON line per format with the rel-L2 of the section's latents (and
 * decoded frames) against the bf16 run.
 *
 *   node --conditions=source --import tsx tooling/quant-quality.ts --tiny                        # CPU, tiny family
 *   node --conditions=source --import tsx tooling/quant-quality.ts --device cuda --vram-budget 8 # real models
 *
 * On the CPU (no allocator budget), or with --force-stream on any device, the DiT is forced to stream every block
 * (residentBlocks 0: every block quantized); on CUDA with --vram-budget the memory planner decides, and its resident
 * blocks stay bf16 (reported).
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
// by path: tooling/ is not a workspace package (run with --conditions=source so the packages resolve to their sources)
import * as T from '../packages/tensor-core/src/index.js';
import { relL2 } from './golden/src/compare.js';
import { HunyuanVideoGenerator, largestBucket, memoryPlanFor, type MemoryPlan, type StreamWeights } from '../apps/generator/src/index.js';

const { values: a } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    'force-stream': { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
    'vram-budget': { type: 'string' },
    dtype: { type: 'string', default: 'bf16' },
    formats: { type: 'string', default: 'int8,fp8' },
    image: { type: 'string', default: resolve(import.meta.dirname ?? '.', '../apps/generator/assets/example.png') },
    prompt: { type: 'string', default: 'a paper boat drifts across a pond' },
    resolution: { type: 'string' },
    window: { type: 'string' },
    steps: { type: 'string', default: '25' },
    seed: { type: 'string', default: '31337' },
  },
});
const device = a.device as T.DeviceType;
const dtype = a.dtype as T.DType;
const formats = a.formats!.split(',').filter(Boolean) as StreamWeights[];
for (const f of formats) if (f !== 'int8' && f !== 'fp8') throw new Error(`--formats: int8 and/or fp8, got ${f}`);
const resolution = Number(a.resolution ?? (a.tiny ? 128 : 640));
const window = Number(a.window ?? (a.tiny ? 3 : 9));
const budget = a['vram-budget'] === undefined ? undefined : Number(a['vram-budget']);
const forced = device === 'cpu' || a['force-stream'];
if (!forced && budget === undefined) throw new Error('--device cuda needs --vram-budget or --force-stream (8-bit weights apply to streamed blocks only)');
// one section: FramePack makes round(seconds * 30 / (4 * window)) sections
const seconds = (4 * window) / 30;
const params = { image: a.image, prompt: a.prompt!, seconds, window, steps: Number(a.steps), seed: Number(a.seed), resolution };

/** The planner's plan with every DiT block forced to stream as `f` (the CPU has no allocator budget to plan from). */
function forcedPlan(f: StreamWeights): MemoryPlan {
  const base = memoryPlanFor({ tiny: a.tiny, vramBudgetGiB: 1024, dtype, planFor: { resolution, window } });
  return { ...base, dit: { ...base.dit, mode: 'streamed', slots: 2, residentBlocks: 0, weights8bit: f === 'bf16' ? null : f } };
}

async function run(f: StreamWeights) {
  const t0 = performance.now();
  const gen = await HunyuanVideoGenerator.load({
    tiny: a.tiny, device, dtype, planFor: { resolution, window },
    ...(forced ? { memoryPlan: forcedPlan(f) } : { vramBudgetGiB: budget, streamWeights: f }),
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    let latents: Float32Array | null = null;
    const r = await gen.generate(params, { onLatents: (l) => void (latents = l.toFloat32Array()) });
    const pixels = r.pixels.toFloat32Array();
    r.pixels.dispose();
    const plan = gen.memoryPlan!;
    return { latents: latents!, pixels, sections: r.sections, plan, timings: r.timings, loadSeconds };
  } finally {
    gen.dispose();
  }
}

const ref = await run('bf16');
if (ref.sections !== 1) throw new Error(`expected one section, got ${ref.sections}`);
const [h, w] = largestBucket(resolution);
const common = { device, ...(device === 'cuda' ? { gpu: T.cudaDeviceInfo().name } : {}), dtype, tiny: a.tiny, model: a.tiny ? 'framepack-tiny (random weights, NOT a real model)' : 'FramePack HunyuanVideo', steps: params.steps, seed: params.seed, window, planned: `${w}x${h}` };
const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ kind: 'quant-quality', ...common, ...o })}\n`);
const gib = (b: number) => Number((b / 2 ** 30).toFixed(3));
// a forced plan streams every block; else the planner's numbers
const planned = (p: MemoryPlan) => (forced ? { residentBlocks: 0 } : { residentBlocks: p.dit.residentBlocks, streamedGiBPerForward: gib(p.dit.streamedBytesPerForward), ditDeviceGiB: gib(p.dit.deviceBytes) });
line({ format: 'bf16', reference: true, ...planned(ref.plan), timings: ref.timings, loadSeconds: ref.loadSeconds });
for (const f of formats) {
  const r = await run(f);
  line({
    format: f,
    latentsRelL2: relL2(r.latents, ref.latents),
    framesRelL2: relL2(r.pixels, ref.pixels),
    ...planned(r.plan),
    timings: r.timings,
    loadSeconds: r.loadSeconds,
  });
}
