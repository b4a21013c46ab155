// The GPU check run by tooling/device/gpu-test.sh on the device machine: every CUDA op against the CPU backend,
// flash vs generic attention at a larger size, then benchmarks as JSON lines (attention TFLOP/s at the DiT shapes,
// GEMM through T.linear vs the same cuBLASLt call made directly, elementwise bandwidth). Files go to $OUT.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '@framepack/tensor-core';
import { relL2, runCudaChecks } from '../../packages/tensor-core/test/cuda-checks.js';

const OUT = process.env.OUT ?? '.';
const benchFile = join(OUT, 'bench.jsonl');
writeFileSync(benchFile, '');
const emit = (o: Record<string, unknown>) => {
  const line = JSON.stringify(o);
  console.log(line);
  appendFileSync(benchFile, line + '\n');
};

if (!T.isDeviceAvailable('cuda')) {
  try {
    T.backendFor('cuda');
  } catch (e) {
    console.error(`no CUDA: ${(e as Error).message}`);
  }
  process.exit(2);
}
const info = T.cudaDeviceInfo();
const lt = T.cublasLtInfo();
emit({ kind: 'device', ...info, cublasLt: lt.version, cublasLtPath: lt.path });

// ---------------------------------------------------------------- 1. op checks
const only = process.argv.includes('--bench-only') || process.argv.includes('--attention-only');
const attentionOnly = process.argv.includes('--attention-only');
let failed = 0;
if (!only) {
  const t0 = performance.now();
  const res = runCudaChecks((r) => {
    if (!r.pass) console.log(`FAIL ${r.name}: rel-L2 ${r.err} (limit ${r.limit})`);
  });
  writeFileSync(join(OUT, 'checks.jsonl'), res.map((r) => JSON.stringify(r)).join('\n') + '\n');
  failed = res.filter((r) => !r.pass).length;
  const worst = Object.entries(
    res.reduce<Record<string, number>>((m, r) => {
      const dt = /(bf16|f16|f32)$/.exec(r.name)?.[1] ?? 'exact';
      m[dt] = Math.max(m[dt] ?? 0, r.err);
      return m;
    }, {}),
  );
  emit({ kind: 'op-checks', total: res.length, failed, worstByDtype: Object.fromEntries(worst), seconds: (performance.now() - t0) / 1000 });
}

// ---------------------------------------------------------------- timing helper
function time(fn: () => void, iters: number, warm = 3): number {
  // batches of back-to-back launches between two events (the GPU stays busy), median of 3 batches
  for (let i = 0; i < warm; i++) T.tidy(fn);
  T.cudaSynchronize();
  const batches: number[] = [];
  for (let r = 0; r < 3; r++) {
    const a = T.CudaEvent.create().record();
    for (let i = 0; i < iters; i++) T.tidy(fn);
    const b = T.CudaEvent.create().record();
    b.synchronize();
    batches.push(a.elapsedMs(b) / iters);
    a.dispose();
    b.dispose();
  }
  batches.sort((x, y) => x - y);
  return batches[1];
}
const rnd = (shape: number[], dtype: T.DType = 'bf16', scale = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const host = new Float32Array(n);
  for (let i = 0; i < n; i++) host[i] = (Math.random() * 2 - 1) * scale;
  return T.tensor(host, shape, { dtype, device: 'cuda' });
};

// ---------------------------------------------------------------- 2. flash vs generic attention (larger sizes)
for (const [L, D, masked] of [[2048, 128, true], [1500, 72, false], [1024, 64, true]] as const) {
  T.tidy(() => {
    const q = rnd([1, 4, L, D]), k = rnd([1, 4, L + 77, D]), v = rnd([1, 4, L + 77, D]);
    const m = new Uint8Array(L + 77).map((_, j) => (j < L + 40 ? 1 : 0));
    const mask = masked ? T.tensor(m, [1, 1, 1, L + 77], { dtype: 'bool', device: 'cuda' }) : null;
    const fl = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
    process.env.FRAMEPACK_ATTN_V1 = '1';
    const v1 = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
    delete process.env.FRAMEPACK_ATTN_V1;
    process.env.FRAMEPACK_ATTN_V2 = '1';
    const v2 = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
    const v2c = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
    delete process.env.FRAMEPACK_ATTN_V2;
    const v4 = fl;
    const v4c = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
    process.env.FRAMEPACK_ATTN_GENERIC = '1';
    const ge = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
    const gec = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
    delete process.env.FRAMEPACK_ATTN_GENERIC;
    const err = relL2(v2, ge), errC = relL2(v2c, gec), errV1 = relL2(v1, ge), errV4 = relL2(v4, ge), errV4c = relL2(v4c, gec);
    const pass = err < 1e-2 && errC < 1e-2 && errV1 < 1e-2 && errV4 < 1e-2 && errV4c < 1e-2;
    if (!pass) failed++;
    emit({ kind: 'attention-flash-vs-generic', L, D, masked, relL2V4: errV4, relL2V4causal: errV4c, relL2V2: err, relL2V2causal: errC, relL2V1: errV1, pass });
  });
}

// ---------------------------------------------------------------- 2b. the Hopper path (warp-specialised wgmma + TMA) vs the generic kernel
// Batch 2 with per-row key masks, Lk not a multiple of the 128-key tile, and causal (Lq = Lk and Lq < Lk).
for (const D of [64, 128]) {
  for (const [L, extra] of [[1000, 77], [333, 0], [4100, 20]] as const) {
    T.tidy(() => {
      const Lk = L + extra;
      const q = rnd([2, 3, L, D]), k = rnd([2, 3, Lk, D]), v = rnd([2, 3, Lk, D]);
      const m = new Uint8Array(2 * Lk).map((_, j) => (j % Lk < Lk - 67 - (j >= Lk ? 150 : 0) ? 1 : 0));
      const mask = T.tensor(m, [2, 1, 1, Lk], { dtype: 'bool', device: 'cuda' });
      const w = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
      const wu = T.scaledDotProductAttention(q, k, v).toFloat32Array();
      const wc = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
      process.env.FRAMEPACK_ATTN_STAGES = '3';
      process.env.FRAMEPACK_ATTN_BN = '128';
      const w3 = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
      const wc3 = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
      delete process.env.FRAMEPACK_ATTN_STAGES;
      process.env.FRAMEPACK_ATTN_BN = D === 128 ? '128' : '176';
      const w176 = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
      const wc176 = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
      delete process.env.FRAMEPACK_ATTN_BN;
      process.env.FRAMEPACK_ATTN_GENERIC = '1';
      const ge = T.scaledDotProductAttention(q, k, v, { mask }).toFloat32Array();
      const gu = T.scaledDotProductAttention(q, k, v).toFloat32Array();
      const gc = T.scaledDotProductAttention(q, k, v, { causal: true }).toFloat32Array();
      delete process.env.FRAMEPACK_ATTN_GENERIC;
      const e1 = relL2(w, ge), e2 = relL2(wc, gc), e3 = relL2(wu, gu), e4 = Math.max(relL2(w3, ge), relL2(wc3, gc)), e5 = Math.max(relL2(w176, ge), relL2(wc176, gc));
      const pass = e1 < 1e-2 && e2 < 1e-2 && e3 < 1e-2 && e4 < 1e-2 && e5 < 1e-2;
      if (!pass) failed++;
      emit({ kind: 'attention-wgmma-vs-generic', D, L, Lk, relL2Masked: e1, relL2Causal: e2, relL2Plain: e3, relL2ThreeStages: e4, relL2OtherKeyTile: e5, pass });
    });
  }
}

// ---------------------------------------------------------------- 3. attention benchmark at the DiT shapes
// FramePack 13B: 24 heads x 128, joint sequence S = image + text tokens (320x320: 5585, 640x640: 19385)
for (const S of [5585, 19385]) {
  T.tidy(() => {
    const q = rnd([1, 24, S, 128]), k = rnd([1, 24, S, 128]), v = rnd([1, 24, S, 128]);
    const ms = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 5 : 10);
    const flop = 4 * 24 * S * S * 128;
    emit({ kind: 'attention', S, heads: 24, headDim: 128, dtype: 'bf16', ms, tflops: flop / (ms * 1e-3) / 1e12 });
    process.env.FRAMEPACK_ATTN_PINGPONG = '0';
    const msnp = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 5 : 10);
    delete process.env.FRAMEPACK_ATTN_PINGPONG;
    emit({ kind: 'attention-no-pingpong', S, ms: msnp, tflops: flop / (msnp * 1e-3) / 1e12 });
    process.env.FRAMEPACK_ATTN_STAGES = '3';
    process.env.FRAMEPACK_ATTN_BN = '128';
    const ms3 = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 5 : 10);
    delete process.env.FRAMEPACK_ATTN_STAGES;
    delete process.env.FRAMEPACK_ATTN_BN;
    emit({ kind: 'attention-3-stages', S, ms: ms3, tflops: flop / (ms3 * 1e-3) / 1e12 });
    process.env.FRAMEPACK_ATTN_BN = '128';
    const ms128 = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 5 : 10);
    delete process.env.FRAMEPACK_ATTN_BN;
    emit({ kind: 'attention-128-keys', S, ms: ms128, tflops: flop / (ms128 * 1e-3) / 1e12 });
    if (!attentionOnly) {
      process.env.FRAMEPACK_ATTN_V1 = '1';
      const msv1 = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 3 : 10);
      delete process.env.FRAMEPACK_ATTN_V1;
      emit({ kind: 'attention-v1', S, ms: msv1, tflops: flop / (msv1 * 1e-3) / 1e12 });
    }
    process.env.FRAMEPACK_ATTN_V2 = '1';
    const msv2 = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 3 : 10);
    emit({ kind: 'attention-v2', S, ms: msv2, tflops: flop / (msv2 * 1e-3) / 1e12 });
    delete process.env.FRAMEPACK_ATTN_V2;
    process.env.FRAMEPACK_ATTN_WGMMA = '0';
    const msw = time(() => T.scaledDotProductAttention(q, k, v), S > 10000 ? 3 : 10);
    delete process.env.FRAMEPACK_ATTN_WGMMA;
    emit({ kind: 'attention-sm80-v4', S, ms: msw, tflops: flop / (msw * 1e-3) / 1e12 });
    // with a key-padding mask (the DiT masks padded text at batch > 1)
    const mask = T.tensor(new Uint8Array(S).map((_, j) => (j < S - 200 ? 1 : 0)), [1, 1, 1, S], { dtype: 'bool', device: 'cuda' });
    const msm = time(() => T.scaledDotProductAttention(q, k, v, { mask }), S > 10000 ? 5 : 10);
    emit({ kind: 'attention-masked', S, heads: 24, headDim: 128, dtype: 'bf16', ms: msm, tflops: flop / (msm * 1e-3) / 1e12 });
  });
}

if (attentionOnly) process.exit(failed ? 1 : 0);

// ---------------------------------------------------------------- 4. GEMM: T.linear vs direct cuBLASLt
const backend = T.backendFor('cuda') as T.CudaBackend;
for (const S of [5585, 19385]) {
  for (const [name, N, K] of [['qkv', 9216, 3072], ['mlp-up', 12288, 3072], ['mlp-down', 3072, 12288], ['single-linear1', 21504, 3072], ['single-linear2', 3072, 15360]] as const) {
    T.tidy(() => {
      const x = rnd([S, K]), w = rnd([N, K], 'bf16', 0.02), b = rnd([N]);
      const ms = time(() => T.linear(x, w, b), 10);
      // the same GEMM straight into a preallocated output (cuBLASLt's own rate, no allocation or JS op layer)
      const out = T.zeros([S, N], { device: 'cuda', dtype: 'bf16' });
      const p = (t: T.Tensor) => (t.view.storage.handle as { ptr: number }).ptr;
      const raw = time(() => backend.addon.gemm(p(x), p(w), p(b), p(out), 2, S, N, K, 1, 0, 0, 0, true), 10);
      const flop = 2 * S * N * K;
      emit({ kind: 'gemm', name, M: S, N, K, ms, tflops: flop / (ms * 1e-3) / 1e12, cublasLtMs: raw, cublasLtTflops: flop / (raw * 1e-3) / 1e12, ratio: raw / ms });
    });
  }
}

// ---------------------------------------------------------------- 5. memory-bound kernels
T.tidy(() => {
  const S = 19385, D = 3072;
  const x = rnd([1, S, D]), y = rnd([1, S, D]), sc = rnd([1, 1, D]), w = rnd([D]);
  const bytes = S * D * 2;
  const add = time(() => T.add(x, y), 20);
  emit({ kind: 'elementwise', op: 'add bf16', ms: add, gbps: (3 * bytes) / (add * 1e-3) / 1e9 });
  const mod = time(() => T.mul(x, sc), 20);
  emit({ kind: 'elementwise', op: 'mul broadcast bf16', ms: mod, gbps: (2 * bytes) / (mod * 1e-3) / 1e9 });
  const ln = time(() => T.layerNorm(x, null, null, 1e-6), 20);
  emit({ kind: 'elementwise', op: 'layerNorm bf16', ms: ln, gbps: (2 * bytes) / (ln * 1e-3) / 1e9 });
  const rms = time(() => T.rmsNorm(T.reshape(x, [S * 24, 128]), T.slice(w, 0, 0, 128), 1e-6), 20);
  emit({ kind: 'elementwise', op: 'rmsNorm(128) bf16', ms: rms, gbps: (2 * bytes) / (rms * 1e-3) / 1e9 });
  const heads = T.reshape(x, [1, S, 24, 128]);
  const pm = time(() => T.permute(heads, [0, 2, 1, 3]), 20);
  emit({ kind: 'elementwise', op: 'permute (1,S,24,128)->(1,24,S,128) bf16', ms: pm, gbps: (2 * bytes) / (pm * 1e-3) / 1e9 });
  const cst = time(() => T.cast(x, 'f32'), 20);
  emit({ kind: 'elementwise', op: 'cast bf16->f32', ms: cst, gbps: (3 * bytes) / (cst * 1e-3) / 1e9 });
  const g = time(() => T.gelu(x, 'tanh'), 20);
  emit({ kind: 'elementwise', op: 'gelu_tanh bf16', ms: g, gbps: (2 * bytes) / (g * 1e-3) / 1e9 });
});
T.tidy(() => {
  // VAE-like conv3d: 128 -> 128 channels, 3x3x3, 5 x 80 x 80
  const x = rnd([1, 128, 5, 80, 80]), w = rnd([128, 128, 3, 3, 3], 'bf16', 0.05);
  const flop = 2 * 128 * 128 * 27 * 5 * 80 * 80;
  const b = rnd([128], 'bf16', 0.1);
  // the default: cuDNN when it loads (T.cudnnInfo() says), then our im2col + cuBLASLt with FRAMEPACK_CONV_CUDNN=0
  const info = T.cudnnInfo();
  const msd = time(() => T.conv3d(x, w, b, { padding: 1 }), 5);
  const defOut = T.conv3d(x, w, b, { padding: 1 }).toFloat32Array();
  process.env.FRAMEPACK_CONV_CUDNN = '0';
  const ms = time(() => T.conv3d(x, w, b, { padding: 1 }), 5);
  const colOut = T.conv3d(x, w, b, { padding: 1 }).toFloat32Array();
  const e0 = relL2(defOut, colOut);
  if (!(e0 < 1e-2)) failed++;
  emit({ kind: 'conv3d', path: `default: ${info}`, shape: '1x128x5x80x80 k3 +bias', ms: msd, tflops: flop / (msd * 1e-3) / 1e12, relL2VsIm2col: e0 });
  emit({ kind: 'conv3d', path: 'im2col+cuBLASLt (FRAMEPACK_CONV_CUDNN=0)', shape: '1x128x5x80x80 k3 +bias', ms, tflops: flop / (ms * 1e-3) / 1e12 });
  process.env.FRAMEPACK_CONV_MMA = '1';
  const msc = time(() => T.conv3d(x, w, b, { padding: 1 }), 5);
  const mmaOut = T.conv3d(x, w, b, { padding: 1 }).toFloat32Array();
  delete process.env.FRAMEPACK_CONV_MMA;
  const e2 = relL2(mmaOut, colOut);
  if (!(e2 < 1e-2)) failed++;
  emit({ kind: 'conv3d', path: 'tensor-core implicit GEMM (FRAMEPACK_CONV_MMA=1 / budget fallback)', shape: '1x128x5x80x80 k3 +bias', ms: msc, tflops: flop / (msc * 1e-3) / 1e12, relL2MmaVsIm2col: e2 });
  process.env.FRAMEPACK_CONV_IMPLICIT = '1';
  const msi = time(() => T.conv3d(x, w, b, { padding: 1 }), 3);
  const a = T.conv3d(x, w, b, { padding: 1 }).toFloat32Array();
  delete process.env.FRAMEPACK_CONV_IMPLICIT;
  const err = relL2(colOut, a);
  if (!(err < 1e-2)) failed++;
  emit({ kind: 'conv3d', path: 'implicit-gemm kernel', shape: '1x128x5x80x80 k3 +bias', ms: msi, tflops: flop / (msi * 1e-3) / 1e12, relL2VsIm2col: err });
  delete process.env.FRAMEPACK_CONV_CUDNN;
  T.tidy(() => {
    // the VAE decoder's widest layers at 640x640 output: 128 ch at full resolution, 512 ch at 1/4
    for (const [ci, t, hw] of [[128, 2, 320], [512, 5, 80]]) {
      const xb = rnd([1, ci, t, hw, hw]), wb = rnd([ci, ci, 3, 3, 3], 'bf16', 0.05);
      const fb = 2 * ci * ci * 27 * t * hw * hw;
      for (const cudnn of ['1', '0']) {
        process.env.FRAMEPACK_CONV_CUDNN = cudnn;
        const mb = time(() => T.conv3d(xb, wb, null, { padding: 1 }), 3);
        emit({ kind: 'conv3d', path: cudnn === '1' ? `default: ${T.cudnnInfo()}` : 'im2col+cuBLASLt (FRAMEPACK_CONV_CUDNN=0)', shape: `1x${ci}x${t}x${hw}x${hw} k3`, ms: mb, tflops: fb / (mb * 1e-3) / 1e12 });
      }
      delete process.env.FRAMEPACK_CONV_CUDNN;
    }
  });
});
const st = T.cudaAllocatorStats();
emit({ kind: 'allocator', ...st });
console.log(`gpu-check: ${failed} failed`);
process.exit(failed ? 1 : 0);
