// The full-size 13B packed DiT forward on the GPU (issues 5 and 8): resident, then streamed under a VRAM budget.
// Run on the device by tooling/device/dit-bench.sh (bundled by prepare-dit-bench.sh); here, on the CPU backend,
// with a tiny config:  node --conditions=source --import tsx tooling/device/dit-bench.ts --device cpu --tiny
//
// 1. the real config (12,874,314,816 parameters, asserted) with deterministic pseudo-random weights generated on
//    the device one tensor at a time (a TensorSource: nothing of 25 GB is ever built on the host);
// 2. FramePack inputs of the original mode's first section at each bucket (window 9, clean latents 1x/2x/4x,
//    729 SigLIP tokens, ~100 valid text tokens padded to 512): 1 warm-up + N timed forwards, peaks from our
//    allocator and from nvidia-smi (a sampler the .sh runs, $SMI_LOG);
// 3. the pinned host->device bandwidth, then the same forwards with the blocks streamed (2 slots, as many blocks
//    resident as fit with --headroom to spare) under a VRAM budget (--budget 8GiB; the allocator is capped at
//    budget - --reserve): bytes streamed, GB/s, ratios to the resident forward and to the PCIe floor;
// 4. outputs finite, resident vs streamed rel-L2.
// JSON lines {what, shape, seconds, peak_gib, device, ...} go to $OUT/bench.jsonl and stdout.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import type { TensorInfo, TensorSource } from '@framepack/safetensors';
import {
  blockNames, type DiTConfig, expectedWeightShapes, HunyuanVideoTransformer3DModelPacked, innerDim, type PackedDiTInputs, parseConfig,
} from '@framepack/dit-model';

// ------------------------------------------------------------------------------------------------ arguments
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const device = opt('device', 'cuda') as DeviceType;
const tiny = flag('tiny');
const dtype = opt('dtype', 'bf16') as DType;
const warmup = Number(opt('warmup', '1'));
const iters = Number(opt('iters', '3'));
const slots = Number(opt('slots', '2'));
// an 8 GB card: the allocator is capped at budget - reserve (CUDA context, cuBLASLt workspace), as the generator's
// --vram-budget does, so the driver sees the whole process under the budget
const budgetBytes = T.parseBytes(opt('budget', tiny ? '6MiB' : '8GiB'));
const reserveBytes = T.parseBytes(opt('reserve', tiny ? '0' : '0.75GiB'));
const FRAGMENTATION_MARGIN = 0.05;
// free room kept under the cap beyond the measured live peak: at the cap the caching allocator empties its cache
// and goes back to the driver on nearly every block (cudaFree synchronizes). Measured on the H100 at 640x640:
// 5 blocks resident (0.01 GiB of plan room left) ran 1.36x the resident forward, 3 blocks (1.27 GiB left) 1.03x.
const headroomBytes = T.parseBytes(opt('headroom', tiny ? '0' : '1GiB'));
const sizes = opt('sizes', tiny ? '64,128' : '320,640').split(',').map(Number);
const skipStreamed = flag('skip-streamed');
// 8-bit streamed weights (int8 | fp8): the streamed blocks' matrices travel as 8-bit codes + per-row scales
const weights8bit = (argv.includes('--weights8bit') ? opt('weights8bit', '') : undefined) as T.Weight8Format | undefined;
if (weights8bit !== undefined && !(T.WEIGHT8_FORMATS as readonly string[]).includes(weights8bit)) throw new Error(`--weights8bit must be one of ${T.WEIGHT8_FORMATS.join(', ')}`);
const OUT = process.env.OUT ?? opt('out', '.');
mkdirSync(OUT, { recursive: true });
const benchFile = join(OUT, 'bench.jsonl');
writeFileSync(benchFile, '');

const GiB = 2 ** 30;
const gib = (b: number) => Math.round((b / GiB) * 1000) / 1000;
const log = (s: string) => console.error(`[dit-bench ${((performance.now() - t00) / 1000).toFixed(1)}s] ${s}`);
const t00 = performance.now();
let deviceName = device as string;
const emit = (o: Record<string, unknown>) => {
  const line = JSON.stringify({ ...o, device: deviceName });
  console.log(line);
  appendFileSync(benchFile, line + '\n');
};

// ------------------------------------------------------------------------------------------------ config
const REAL_PARAMS = 12_874_314_816;
const config: DiTConfig = parseConfig(
  tiny
    ? { num_attention_heads: 2, attention_head_dim: 16, num_layers: 2, num_single_layers: 3, num_refiner_layers: 1, text_embed_dim: 32,
        pooled_projection_dim: 16, rope_axes_dim: [4, 6, 6], has_image_proj: true, image_proj_dim: 24, has_clean_x_embedder: true }
    : { num_attention_heads: 24, attention_head_dim: 128, num_layers: 20, num_single_layers: 40, num_refiner_layers: 2, text_embed_dim: 4096,
        pooled_projection_dim: 768, rope_axes_dim: [16, 56, 56], has_image_proj: true, image_proj_dim: 1152, has_clean_x_embedder: true,
        patch_size: 2, patch_size_t: 1, in_channels: 16, out_channels: 16, rope_theta: 256 },
);
const shapes = expectedWeightShapes(config);
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const numParams = [...shapes.values()].reduce((n, s) => n + numelOf(s), 0);
if (!tiny && numParams !== REAL_PARAMS) throw new Error(`the config has ${numParams} parameters, expected ${REAL_PARAMS} (the real FramePack DiT)`);
const textTokens = tiny ? 16 : 512, validText = tiny ? 5 : 100, imageTokens = tiny ? 9 : 729;
const bpe = dtype === 'f32' ? 4 : 2;
const blockBytes = new Map(blockNames(config).map((b) => [b, [...shapes].filter(([k]) => k.startsWith(`${b}.`)).reduce((n, [, s]) => n + numelOf(s) * bpe, 0)]));
const allBlockBytes = [...blockBytes.values()].reduce((a, b) => a + b, 0);
// bytes one streamed copy of a block moves (8-bit codes + scales with --weights8bit)
const copyBytes = new Map(blockNames(config).map((b) => [b, weights8bit ? T.streamGroupBytes({ name: b, params: [...shapes].filter(([k]) => k.startsWith(`${b}.`)).map(([key, shape]) => ({ key, shape })) }, dtype, weights8bit) : blockBytes.get(b)!]));
// everything outside the blocks, plus the f32 copy of proj_out the model keeps
const fixedBytes = (numParams * bpe - allBlockBytes) + (numelOf(shapes.get('proj_out.weight')!) + numelOf(shapes.get('proj_out.bias')!)) * 4;

// ------------------------------------------------------------------------------------------------ weights
/**
 * Deterministic pseudo-random weights made on `genDevice` from the key and shape alone:
 * v = sin(1000 sin(a i + b j + phase(key))) over a (rows, numel/rows) grid -- not low-rank (the outer sin), about
 * uniform in phase, variance 1/2 -- scaled to std 1/sqrt(fan_in) for matrices/kernels; biases 0.014 std; norm weights
 * 1 +- 0.07. Same key -> same bits on the same device, so the resident and the streamed model hold identical weights.
 */
function phaseOf(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  return (h % 100000) / 100;
}
function synthesize(key: string, shape: readonly number[], out: DType, genDevice: DeviceType): Tensor {
  return T.tidy(() => {
    const n = numelOf(shape);
    const rows = shape[0], cols = n / rows;
    const r = T.affine(T.reshape(T.arange(rows, undefined, 1, { device: genDevice }), [rows, 1]), 0.7548776662, phaseOf(key));
    const c = T.affine(T.reshape(T.arange(cols, undefined, 1, { device: genDevice }), [1, cols]), 0.569840291, 0);
    const v = T.sin(T.affine(T.sin(T.add(r, c)), 1000, 0));
    let w: Tensor;
    if (shape.length > 1) w = T.affine(v, Math.sqrt(2 / cols), 0);
    else if (key.endsWith('.bias')) w = T.affine(v, 0.02, 0);
    else w = T.affine(v, 0.1, 1);
    return T.reshape(T.cast(w, out), shape);
  });
}
class SyntheticWeights implements TensorSource {
  reads = 0;
  constructor(readonly genDevice: DeviceType, readonly fileDType: 'BF16' | 'F16' | 'F32') {}
  keys(): string[] {
    return [...shapes.keys()];
  }
  has(name: string): boolean {
    return shapes.has(name);
  }
  info(name: string): TensorInfo {
    const s = shapes.get(name);
    if (!s) throw new Error(`no weight ${name}`);
    return { dtype: this.fileDType, shape: [...s], begin: 0, end: 0 };
  }
  tensor(name: string, opts: { dtype?: DType; device?: DeviceType } = {}): Tensor {
    this.reads++;
    const t = synthesize(name, this.info(name).shape, opts.dtype ?? dtype, this.genDevice);
    const want = opts.device ?? 'cpu';
    if (want === t.device) return t;
    const moved = T.toDevice(t, want);
    t.dispose();
    return moved;
  }
  close(): void {}
}

// ------------------------------------------------------------------------------------------------ inputs
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randn(shape: number[], seed: number): Tensor {
  const r = rng(seed), n = numelOf(shape), a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r(), m = Math.sqrt(-2 * Math.log(u));
    a[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) a[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  const t = T.tensor(a, shape);
  const d = T.toDevice(t, device);
  if (d !== t) t.dispose();
  return d;
}
const onDevice = (t: Tensor) => {
  const d = T.toDevice(t, device);
  t.dispose();
  return d;
};
const indices = (from: number, n: number) => onDevice(T.tensor(BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i)), [1, n], { dtype: 'i64' }));

/**
 * The original FramePack mode's first section (latent_padding 3): indices [pre 1 | blank 27 | window 9 | post 1 |
 * 2x 2 | 4x 16]; clean latents = [start, post], 2x and 4x from the (zero at first, random here) history.
 */
function framePackInputs(px: number, seed: number): { inputs: PackedDiTInputs; imageTokens: number; contextTokens: number } {
  const window = 9, padding = 3 * window;
  const h = px / 8, w = px / 8;
  const pre = 0, latent = 1 + padding, post = latent + window, two = post + 1, four = two + 2;
  const inputs: PackedDiTInputs = {
    hiddenStates: randn([1, 16, window, h, w], seed),
    timestep: onDevice(T.tensor([1000], [1])),
    guidance: onDevice(T.tensor([10000], [1])),
    encoderHiddenStates: randn([1, textTokens, config.textEmbedDim], seed + 1),
    encoderAttentionMask: onDevice(T.tensor(Uint8Array.from({ length: textTokens }, (_, i) => (i < validText ? 1 : 0)), [1, textTokens], { dtype: 'bool' })),
    pooledProjections: randn([1, config.pooledProjectionDim], seed + 2),
    imageEmbeddings: randn([1, imageTokens, config.imageProjDim], seed + 3),
    latentIndices: indices(latent, window),
    cleanLatents: randn([1, 16, 2, h, w], seed + 4),
    cleanLatentIndices: onDevice(T.tensor(BigInt64Array.from([BigInt(pre), BigInt(post)]), [1, 2], { dtype: 'i64' })),
    cleanLatents2x: randn([1, 16, 2, h, w], seed + 5),
    cleanLatentIndices2x: indices(two, 2),
    cleanLatents4x: randn([1, 16, 16, h, w], seed + 6),
    cleanLatentIndices4x: indices(four, 16),
  };
  const p = config.patchSize, grid = (f: number, s: number) => Math.ceil(f / s) * Math.ceil(h / (p * s)) * Math.ceil(w / (p * s));
  return { inputs, imageTokens: grid(window, 1) + grid(2, 1) + grid(2, 2) + grid(16, 4), contextTokens: imageTokens + validText };
}
const disposeInputs = (x: PackedDiTInputs) => Object.values(x).forEach((t) => (t as Tensor | null)?.dispose());

// ------------------------------------------------------------------------------------------------ measuring
const cuda = device === 'cuda';
const sync = () => cuda && T.cudaSynchronize();
function resetPeak(): void {
  if (cuda) T.cudaResetPeak();
  T.resetPeakMemory(device);
}
/** Allocator view: peak of live bytes and of bytes held from the driver (CPU: live tensors only). */
function peaks(): { allocated: number; reserved: number } {
  if (cuda) {
    const s = T.cudaAllocatorStats();
    return { allocated: s.peakAllocatedBytes, reserved: s.peakReservedBytes };
  }
  const s = T.memoryStats(device);
  return { allocated: s.peakBytes, reserved: s.peakBytes };
}
const nowAllocated = () => (cuda ? T.cudaAllocatorStats().allocatedBytes : T.memoryStats(device).currentBytes);
/** Highest device memory nvidia-smi saw between two Date.now() times (the .sh samples it into $SMI_LOG). */
async function smiPeak(from: number, to: number): Promise<number | null> {
  const f = process.env.SMI_LOG;
  if (!f || !existsSync(f)) return null;
  await new Promise((r) => setTimeout(r, 300)); // let the sampler pass `to`
  let best: number | null = null;
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const [t, mib] = line.trim().split(/\s+/).map(Number);
    if (t >= from && t <= to + 100 && Number.isFinite(mib)) best = Math.max(best ?? 0, mib * 2 ** 20);
  }
  return best;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Timed {
  seconds: number[];
  out: Float32Array;
  outShape: number[];
  peakAllocated: number;
  peakReserved: number;
  /** Peak live bytes above what was allocated before the forwards (activations + workspaces). */
  activationPeak: number;
  smiPeakBytes: number | null;
  /** cudaMalloc calls by the caching allocator during the forwards (churn under a tight cap); null on the CPU. */
  driverAllocs: number | null;
}
async function timeForwards(model: HunyuanVideoTransformer3DModelPacked, inputs: PackedDiTInputs, onForward?: () => void): Promise<Timed> {
  sync();
  if (cuda) T.cudaEmptyCache();
  const base = nowAllocated();
  const allocs0 = cuda ? T.cudaAllocatorStats().driverAllocs : 0;
  resetPeak();
  const wall0 = Date.now();
  const seconds: number[] = [];
  let out: Float32Array = new Float32Array(0), outShape: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    sync();
    const t0 = performance.now();
    const y = model.forward(inputs);
    sync();
    const dt = (performance.now() - t0) / 1000;
    onForward?.();
    if (i >= warmup) seconds.push(dt);
    if (i === warmup + iters - 1) {
      out = y.toFloat32Array();
      outShape = [...y.shape];
    }
    y.dispose();
    log(`  forward ${i < warmup ? 'warm-up' : i - warmup + 1}: ${dt.toFixed(3)} s`);
  }
  const p = peaks();
  return { seconds, out, outShape, peakAllocated: p.allocated, peakReserved: p.reserved, activationPeak: p.allocated - base,
    driverAllocs: cuda ? T.cudaAllocatorStats().driverAllocs - allocs0 : null, smiPeakBytes: await smiPeak(wall0, Date.now()) };
}
function finiteStats(a: Float32Array): { nonFinite: number; meanAbs: number } {
  let bad = 0, s = 0;
  for (const v of a) if (Number.isFinite(v)) s += Math.abs(v);
  else bad++;
  return { nonFinite: bad, meanAbs: s / Math.max(1, a.length - bad) };
}
function compare(a: Float32Array, b: Float32Array): { relL2: number; maxAbs: number } {
  let d = 0, n = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = a[i] - b[i];
    d += e * e;
    n += b[i] * b[i];
    m = Math.max(m, Math.abs(e));
  }
  return { relL2: Math.sqrt(d / n), maxAbs: m };
}

/** Pinned host -> device bandwidth: `bytes` copied `reps` times on a copy stream, timed with events (median). */
function pinnedH2D(bytes: number, reps = 10): { gbps: number; bestGbps: number; ms: number[] } {
  const host = T.allocPinned(bytes);
  new Uint8Array(host).fill(0x3c); // touch every page: the copy must move real data
  const dst = T.zeros([bytes / 2], { dtype: 'bf16', device: 'cuda' });
  const stream = T.CudaStream.create();
  const a = T.CudaEvent.create(), b = T.CudaEvent.create();
  const ms: number[] = [];
  try {
    for (let i = 0; i <= reps; i++) {
      a.record(stream);
      T.copyToDeviceAsync(dst, host, stream);
      b.record(stream);
      b.synchronize();
      if (i > 0) ms.push(a.elapsedMs(b));
    }
  } finally {
    stream.synchronize();
    a.dispose();
    b.dispose();
    stream.dispose();
    dst.dispose();
  }
  return { gbps: bytes / (median(ms) / 1000) / 1e9, bestGbps: bytes / (Math.min(...ms) / 1000) / 1e9, ms };
}

/**
 * The blocks one steady-state forward copies in: the WeightStreamer's ring schedule replayed (block i lives in slot
 * i % slots; acquire(i) queues i..i+slots-1, release(i) queues i+slots, the last release queues the next forward's
 * first slots; a block still in its slot is not copied). With an odd count over 2 slots one block stays put.
 * Checked against the streamer's own copy counter.
 */
function copiedPerForward(order: string[], nSlots: number): string[] {
  const tags: (string | null)[] = Array(nSlots).fill(null);
  let copied: string[] = [];
  const queue = (k: number) => {
    if (k >= order.length || tags[k % nSlots] === order[k]) return;
    tags[k % nSlots] = order[k];
    copied.push(order[k]);
  };
  for (let pass = 0; pass < 3; pass++) {
    copied = [];
    for (let i = 0; i < order.length; i++) {
      for (let k = i; k < Math.min(i + nSlots, order.length); k++) queue(k);
      if (i + nSlots < order.length) queue(i + nSlots);
      else if (i === order.length - 1) for (let k = 0; k < Math.min(nSlots, order.length); k++) queue(k);
    }
  }
  return copied;
}

// ------------------------------------------------------------------------------------------------ run
if (cuda) {
  const info = T.cudaDeviceInfo();
  deviceName = info.name;
  log(`device ${JSON.stringify(info)}; cuBLASLt ${JSON.stringify(T.cublasLtInfo())}`);
}
emit({
  what: 'config', shape: tiny ? 'tiny' : 'real', parameters: numParams, hidden: innerDim(config), dual: config.numLayers, single: config.numSingleLayers,
  dtype, weight_gib: gib(numParams * bpe), block_gib: gib(allBlockBytes), fixed_gib: gib(fixedBytes),
});

function source0(): SyntheticWeights {
  return new SyntheticWeights(device, dtype === 'f32' ? 'F32' : dtype === 'f16' ? 'F16' : 'BF16');
}
const source = source0();

if (flag('dry-run')) {
  // check the config, the inputs and one large synthesized weight without loading the model
  const key = 'single_transformer_blocks.0.proj_out.weight';
  const w = source0().tensor(key, { dtype: 'f32', device });
  const a = w.toFloat32Array();
  let s1 = 0, s2 = 0;
  for (const v of a) (s1 += v), (s2 += v * v);
  const mean = s1 / a.length, std = Math.sqrt(s2 / a.length - mean * mean);
  emit({ what: 'dry-run', shape: `[${w.shape}]`, key, mean, std, expected_std: 1 / Math.sqrt(w.shape[1]) });
  for (const px of sizes) {
    const { inputs, imageTokens: it, contextTokens } = framePackInputs(px, px);
    emit({ what: 'dry-run-inputs', shape: `${px}x${px}`, image_tokens: it, context_tokens: contextTokens, inputs: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, (t as Tensor).shape])) });
    disposeInputs(inputs);
  }
  process.exit(0);
}
const results = new Map<number, { resident?: Timed; streamed?: Timed }>();

// -- resident
{
  const t0 = performance.now();
  const model = HunyuanVideoTransformer3DModelPacked.fromWeights(config, source, { device, dtype });
  sync();
  const loadS = (performance.now() - t0) / 1000;
  emit({ what: 'load-resident', shape: 'weights', seconds: loadS, allocated_gib: gib(nowAllocated()), parameters: model.weights.numParameters });
  for (const px of sizes) {
    const { inputs, imageTokens: it, contextTokens } = framePackInputs(px, px);
    log(`resident ${px}x${px}: ${it} image + ${contextTokens} context tokens`);
    const r = await timeForwards(model, inputs);
    disposeInputs(inputs);
    results.set(px, { resident: r });
    const st = finiteStats(r.out);
    emit({
      what: 'resident-forward', shape: `${px}x${px}`, image_tokens: it, context_tokens: contextTokens, seconds: median(r.seconds), runs: r.seconds,
      peak_gib: gib(r.peakAllocated), peak_reserved_gib: gib(r.peakReserved), activation_peak_gib: gib(r.activationPeak),
      smi_peak_gib: r.smiPeakBytes === null ? null : gib(r.smiPeakBytes), driver_allocs: r.driverAllocs, out_shape: r.outShape, non_finite: st.nonFinite, mean_abs: st.meanAbs,
    });
  }
  model.dispose();
  sync();
  if (cuda) T.cudaEmptyCache();
}

// -- streamed under the budget
if (!skipStreamed) {
  const names = blockNames(config);
  const bytes = names.map((b) => blockBytes.get(b)!);
  const maxActivation = Math.max(...[...results.values()].map((r) => r.resident!.activationPeak));
  const cap = Math.max(0, budgetBytes - reserveBytes);
  const usable = cap * (1 - FRAGMENTATION_MARGIN);
  // as many leading blocks resident as fit beside the fixed weights, the slots and the largest forward's activations
  // (measured on the resident model above)
  const deviceNeed = (r: number) => fixedBytes + bytes.slice(0, r).reduce((a, b) => a + b, 0) + Math.min(slots, names.length - r) * Math.max(0, ...bytes.slice(r)) + maxActivation;
  let residentBlocks = 0;
  while (residentBlocks < names.length && deviceNeed(residentBlocks + 1) + headroomBytes <= usable) residentBlocks++;
  if (argv.includes('--resident-blocks')) residentBlocks = Number(opt('resident-blocks', '0'));
  const h2dBytes = Math.max(...bytes) - (Math.max(...bytes) % 4096);
  let bw: ReturnType<typeof pinnedH2D> | null = null;
  if (cuda) {
    bw = pinnedH2D(h2dBytes);
    emit({ what: 'pinned-h2d', shape: `${h2dBytes} B`, seconds: median(bw.ms) / 1000, gbps: bw.gbps, best_gbps: bw.bestGbps, runs_ms: bw.ms });
    T.setVramBudget(cap);
  }
  const build = (r: number) => {
    log(`streamed: budget ${gib(budgetBytes)} GiB (allocator cap ${gib(cap)} GiB), ${r} blocks resident, plan ${gib(deviceNeed(r))} GiB of ${gib(usable)} usable (headroom ${gib(headroomBytes)} GiB)`);
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    const m = HunyuanVideoTransformer3DModelPacked.fromWeights(config, source, { device, dtype, streamBlocks: { slots, residentBlocks: r, weights8bit } });
    sync();
    emit({
      what: 'load-streamed', shape: 'weights', seconds: (performance.now() - t0) / 1000, resident_blocks: r, slots: m.streamer!.slots,
      host_gib: gib(m.streamer!.hostBytes), slot_gib: gib(m.streamer!.deviceBytes), allocated_gib: gib(nowAllocated()), planned_gib: gib(deviceNeed(r)),
      rss_gib: gib(process.memoryUsage().rss), rss_delta_gib: gib(process.memoryUsage().rss - rss0), budget_gib: gib(budgetBytes), allocator_cap_gib: gib(cap),
    });
    return m;
  };
  let model = build(residentBlocks);
  for (const px of sizes) {
    const { inputs, imageTokens: it, contextTokens } = framePackInputs(px, px);
    let r: Timed | null = null;
    const loads: number[] = [];
    for (let attempt = 0; !r; attempt++) {
      log(`streamed ${px}x${px}`);
      const s = model.streamer!;
      let last = s.loads;
      loads.length = 0;
      try {
        r = await timeForwards(model, inputs, () => {
          loads.push(s.loads - last);
          last = s.loads;
        });
      } catch (e) {
        // the activation estimate was too tight for this budget: keep fewer blocks resident and try again
        if (!(e instanceof T.OutOfMemoryError) || attempt >= 2 || residentBlocks === 0) throw e;
        emit({ what: 'streamed-oom', shape: `${px}x${px}`, resident_blocks: residentBlocks, message: (e as Error).message.slice(0, 300) });
        model.dispose();
        sync();
        if (cuda) T.cudaEmptyCache();
        residentBlocks = Math.max(0, residentBlocks - 2);
        model = build(residentBlocks);
      }
    }
    disposeInputs(inputs);
    const res = results.get(px)!;
    res.streamed = r;
    const sec = median(r.seconds);
    const st = finiteStats(r.out);
    const cmp = compare(r.out, res.resident!.out);
    const streamedNames = names.slice(residentBlocks);
    const copied = copiedPerForward(streamedNames, model.streamer!.slots);
    const bytesPerForward = copied.reduce((n, b) => n + copyBytes.get(b)!, 0);
    if (loads.slice(warmup).some((l) => l !== copied.length)) log(`note: ${loads} block copies per forward, the schedule predicts ${copied.length}`);
    const floorS = bw ? bytesPerForward / (bw.gbps * 1e9) : null;
    emit({
      what: 'streamed-forward', shape: `${px}x${px}`, image_tokens: it, context_tokens: contextTokens, seconds: sec, runs: r.seconds,
      peak_gib: gib(r.peakAllocated), peak_reserved_gib: gib(r.peakReserved), smi_peak_gib: r.smiPeakBytes === null ? null : gib(r.smiPeakBytes),
      driver_allocs: r.driverAllocs, budget_gib: gib(budgetBytes), allocator_cap_gib: gib(cap), resident_blocks: residentBlocks, slots, streamed_blocks: streamedNames.length,
      weights8bit: weights8bit ?? 'bf16', block_loads_per_forward: loads.slice(warmup), predicted_loads: copied.length, bytes_per_forward: bytesPerForward, streamed_gbps: bytesPerForward / sec / 1e9,
      ratio_to_resident: sec / median(res.resident!.seconds), pcie_floor_s: floorS, ratio_to_pcie_floor: floorS ? sec / floorS : null,
      pcie_floor_best_s: bw ? bytesPerForward / (bw.bestGbps * 1e9) : null,
      non_finite: st.nonFinite, rel_l2_vs_resident: cmp.relL2, max_abs_vs_resident: cmp.maxAbs,
    });
  }
  model.dispose();
  if (cuda) T.setVramBudget(null);
}

// ------------------------------------------------------------------------------------------------ verdict
let ok = true;
for (const [px, r] of results) {
  const bad = finiteStats(r.resident!.out).nonFinite + (r.streamed ? finiteStats(r.streamed.out).nonFinite : 0);
  const rel = r.streamed ? compare(r.streamed.out, r.resident!.out).relL2 : 0;
  // bf16 storage with identical weights and kernels: the streamed forward should match to bf16 rounding at most.
  // With 8-bit streamed weights the difference is the formats' quantization error: measured and reported (the
  // quality cost), not checked against a limit (H100, random weights, int8: 2.1e-2 at 320, 2.3e-2 at 640)
  const pass = bad === 0 && (weights8bit !== undefined || rel <= 1e-2);
  ok &&= pass;
  emit({ what: 'check', shape: `${px}x${px}`, pass, non_finite: bad, rel_l2_streamed_vs_resident: r.streamed ? rel : null, max_rss_gib: gib(process.resourceUsage().maxRSS * 1024) });
}
log(ok ? 'all checks passed' : 'CHECKS FAILED');
process.exit(ok ? 0 : 1);
