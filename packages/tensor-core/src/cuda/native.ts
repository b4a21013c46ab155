// Finds and loads the CUDA addon (native/build/framepack_cuda.node). Loading never throws on machines
// without CUDA: `loadAddon()` returns the reason instead, and tensor-core then reports CPU only.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Device pointers and stream/event handles are plain numbers (exact below 2^53). */
export type Ptr = number;
export interface DeviceInfo {
  deviceCount: number;
  device: number;
  name: string;
  major: number;
  minor: number;
  totalMemory: number;
  multiprocessors: number;
  l2Bytes: number;
  driverVersion: number;
  runtimeVersion: number;
}
export interface AllocatorStats {
  allocatedBytes: number;
  reservedBytes: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
  budgetBytes: number;
  liveBlocks: number;
  cachedBlocks: number;
  driverAllocs: number;
  deviceFreeBytes: number;
  deviceTotalBytes: number;
}
/** The addon's functions (see native/src/addon.cpp for argument order). */
export interface Addon {
  buildArchs: string;
  init(): DeviceInfo;
  alloc(bytes: number): Ptr;
  free(p: Ptr): void;
  emptyCache(): void;
  setBudget(bytes: number): void;
  resetPeak(): void;
  stats(): AllocatorStats;
  upload(dst: Ptr, src: ArrayBufferView): void;
  download(src: Ptr, dst: ArrayBufferView): void;
  copyD2D(dst: Ptr, src: Ptr, bytes: number): void;
  memset0(p: Ptr, bytes: number): void;
  synchronize(): void;
  streamCreate(): Ptr;
  streamDestroy(s: Ptr): void;
  streamSync(s: Ptr): void;
  setComputeStream(s: Ptr): void;
  getComputeStream(): Ptr;
  eventCreate(): Ptr;
  eventDestroy(e: Ptr): void;
  eventRecord(e: Ptr, s: Ptr): void;
  eventSync(e: Ptr): void;
  eventQuery(e: Ptr): boolean;
  eventElapsed(a: Ptr, b: Ptr): number;
  streamWaitEvent(s: Ptr, e: Ptr): void;
  hostAlloc(bytes: number): ArrayBuffer;
  copyH2DAsync(dst: Ptr, src: ArrayBuffer, byteOffset: number, bytes: number, stream: Ptr): void;
  copyD2HAsync(dst: ArrayBuffer, byteOffset: number, src: Ptr, bytes: number, stream: Ptr): void;
  fill(p: Ptr, n: number, esize: number, value: number, dt: number, bits16: number): void;
  cast(x: Ptr, dtIn: number, y: Ptr, dtOut: number, n: number): void;
  unary(op: number, x: Ptr, y: Ptr, dt: number, n: number): void;
  binary(op: number, a: Ptr, b: Ptr, y: Ptr, dt: number, n: number, bc: number[], fast?: number[]): void;
  compare(op: number, a: Ptr, b: Ptr, y: Ptr, dt: number, n: number, bc: number[]): void;
  where(c: Ptr, a: Ptr, b: Ptr, y: Ptr, esize: number, n: number, bc: number[]): void;
  affine(op: number, x: Ptr, y: Ptr, dt: number, n: number, p0: number, p1: number): void;
  rope(x: Ptr, c: Ptr, s: Ptr, y: Ptr, dt: number, n: number, D: number, half: number, bc: number[]): void;
  stridedCopy(x: Ptr, y: Ptr, esize: number, n: number, shape: number[], src: number[], dst: number[]): void;
  pad(x: Ptr, y: Ptr, esize: number, outShape: number[], inShape: number[], before: number[], replicate: number, value: number, dt: number, bits16: number): void;
  indexSelect(x: Ptr, y: Ptr, esize: number, idx: Ptr, idt: number, outer: number, len: number, inner: number, nidx: number): void;
  gather(x: Ptr, y: Ptr, esize: number, idx: Ptr, idt: number, idxShape: number[], inShape: number[], axis: number): void;
  reduce(op: number, x: Ptr, y: Ptr, dt: number, outer: number, len: number, inner: number): void;
  variance(x: Ptr, y: Ptr, dt: number, outer: number, len: number, inner: number, correction: number): void;
  softmax(x: Ptr, y: Ptr, dt: number, rows: number, d: number): void;
  norm(x: Ptr, w: Ptr | null, b: Ptr | null, y: Ptr, dt: number, rows: number, d: number, eps: number, rms: number): void;
  groupNorm(x: Ptr, w: Ptr | null, b: Ptr | null, y: Ptr, dt: number, n: number, c: number, spatial: number, groups: number, eps: number): void;
  gemm(a: Ptr, b: Ptr, bias: Ptr | null, c: Ptr, dt: number, M: number, N: number, K: number, batch: number, strideA: number, strideB: number, strideC: number, transB: boolean): void;
  cublasInfo(): { version: number; path: string };
  /** "cuDNN <version> (<path>)" when conv3d uses cuDNN, else why not. */
  cudnnInfo(): string;
  attention(q: Ptr, k: Ptr, v: Ptr, o: Ptr, mask: Ptr | null, mstride: number[], dt: number, B: number, H: number, Lq: number, Lk: number, D: number, Dv: number, causal: boolean, scale: number, blhd?: boolean): boolean;
  /** y (rows*cols, dtOut) = decode(codes) * scales[row]; fmt 0 int8, 1 fp8 e4m3fn (kernels_quant.cu). */
  dequant8(codes: Ptr, scales: Ptr, y: Ptr, dtOut: number, fmt: number, rows: number, cols: number): void;
  /** Host quantization on all cores (quantize_host.cpp): the first row with a non-finite value, or -1. */
  quantize8Host(src: Float32Array | Uint16Array, rows: number, cols: number, fp8: number, codes: Uint8Array, scales: Float32Array): number;
  conv3d(x: Ptr, w: Ptr, b: Ptr | null, y: Ptr, dt: number, xs: number[], ws: number[], os: number[], stride: number[], pad: number[]): void;
}

function hereDir(): string {
  try {
    const u = import.meta.url;
    if (u) return dirname(fileURLToPath(u));
  } catch {
    // CommonJS build: import.meta is not available
  }
  return typeof __dirname === 'string' ? __dirname : process.cwd();
}

/** Where the addon may be: $FRAMEPACK_CUDA_ADDON, then native/build/ of this package (from src/cuda, or dist/). */
export function addonCandidates(): string[] {
  const here = hereDir();
  const c: string[] = [];
  if (process.env.FRAMEPACK_CUDA_ADDON) c.push(resolve(process.env.FRAMEPACK_CUDA_ADDON));
  for (const up of ['../..', '..', '../../..']) c.push(join(here, up, 'native/build/framepack_cuda.node'));
  return c;
}

let cached: { addon: Addon; info: DeviceInfo } | { error: string } | undefined;
/** Load the addon and initialise the first GPU (FRAMEPACK_CUDA_DEVICE picks another); the reason on failure. */
export function loadAddon(): { addon: Addon; info: DeviceInfo } | { error: string } {
  if (cached) return cached;
  const path = addonCandidates().find((p) => existsSync(p));
  if (!path) return (cached = { error: 'the CUDA addon is not built (run `node native/build.mjs` in packages/tensor-core with nvcc on PATH)' });
  try {
    const req = createRequire(join(hereDir(), 'loader.js'));
    const addon = req(path) as Addon;
    const info = addon.init();
    return (cached = { addon, info });
  } catch (e) {
    return (cached = { error: e instanceof Error ? e.message : String(e) });
  }
}
