// CUDA-specific API beside the Backend contract: device info, allocator stats and VRAM budget, streams,
// events, pinned host buffers and asynchronous host<->device copies (what the low-VRAM block streaming uses).
import { backendFor } from '../device.js';
import { DeviceError, OutOfMemoryError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { QuantizeError, type Weight8Format } from '../quant8-codec.js';
import { CudaBackend } from './backend.js';
import { type Addon, type AllocatorStats, type DeviceInfo, loadAddon, type Ptr } from './native.js';

export { CudaBackend } from './backend.js';
export type { AllocatorStats, DeviceInfo } from './native.js';

/** Parse a byte size: a number of bytes, or with a unit (`8GiB`, `8G`, `7500MB`, `512MiB`). */
export function parseBytes(s: string): number {
  const m = /^\s*([\d.]+)\s*([kmgt]?)(i?b?)\s*$/i.exec(s);
  if (!m) throw new RangeError(`cannot read '${s}' as a byte size (e.g. 8GiB, 8000MB, 8589934592)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const si = m[3].toLowerCase() === 'b' && m[2] !== '' ? 1000 ** ['', 'k', 'm', 'g', 't'].indexOf(m[2].toLowerCase()) : mult;
  return Math.floor(parseFloat(m[1]) * si);
}

/**
 * The addon's functions with its errors typed: out-of-memory as OutOfMemoryError, an out-of-range index as
 * RangeError (as the CPU backend), anything else (launch failures, missing cuBLASLt) as DeviceError.
 */
function typedErrors(addon: Addon): Addon {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(addon)) {
    if (typeof v !== 'function') {
      out[k] = v;
      continue;
    }
    const f = v as (...args: unknown[]) => unknown;
    out[k] = (...args: unknown[]) => {
      try {
        return f(...args);
      } catch (e) {
        const err = e as Error & { code?: string; requestedBytes?: number };
        if (err.code === 'E_OOM') throw new OutOfMemoryError(err.message, 'cuda', err.requestedBytes ?? 0);
        if (/out of range/.test(err.message)) throw new RangeError(err.message);
        throw new DeviceError(err.message);
      }
    };
  }
  return out as unknown as Addon;
}

/** The loader registered for 'cuda': the addon must load and a GPU must be present. Applies FRAMEPACK_VRAM_BUDGET. */
export function loadCudaBackend(): CudaBackend {
  const r = loadAddon();
  if ('error' in r) throw new DeviceError(r.error);
  const b = new CudaBackend(typedErrors(r.addon), r.info);
  const env = process.env.FRAMEPACK_VRAM_BUDGET;
  if (env) b.addon.setBudget(parseBytes(env));
  return b;
}

/**
 * Quantize a row-major (rows, cols) matrix on all CPU cores with the addon (native/src/quantize_host.cpp): the same
 * codes and scales as quantize8Host (f32 values) / quantize8HostBf16 (bf16 bits). Returns false, doing nothing, when
 * the addon is not loaded (no GPU or no build): use those then. Throws QuantizeError on a non-finite value.
 */
export function quantize8HostNative(src: Float32Array | Uint16Array, rows: number, cols: number, format: Weight8Format, codes: Uint8Array, scales: Float32Array): boolean {
  const r = loadAddon();
  if ('error' in r) return false;
  const bad = r.addon.quantize8Host(src, rows, cols, format === 'fp8' ? 1 : 0, codes, scales);
  if (bad >= 0) throw new QuantizeError(`quantize8: row ${bad} holds a non-finite value; 8-bit formats need finite weights`);
  return true;
}

function cuda(): CudaBackend {
  return backendFor('cuda') as CudaBackend;
}
export function cudaDeviceInfo(): DeviceInfo {
  return { ...cuda().info };
}
/** The caching allocator's view: bytes in live blocks, bytes held from the driver (live + cached), peaks, budget. */
export function cudaAllocatorStats(): AllocatorStats {
  return cuda().addon.stats();
}
/** Impose a hard VRAM budget in bytes (null/0 = none); allocations beyond it throw OutOfMemoryError naming it. */
export function setVramBudget(bytes: number | null): void {
  cuda().addon.setBudget(bytes ?? 0);
}
/** Give cached blocks back to the driver. */
export function cudaEmptyCache(): void {
  cuda().addon.emptyCache();
}
export function cudaResetPeak(): void {
  cuda().addon.resetPeak();
}
/** Wait for all work queued on the compute stream (and surface asynchronous kernel errors). */
export function cudaSynchronize(): void {
  cuda().addon.synchronize();
}
/** cuBLASLt's version and where it was loaded from (loads it; throws a clear error if it is missing). */
export function cublasLtInfo(): { version: number; path: string } {
  return cuda().addon.cublasInfo();
}
/** Whether conv3d (bf16/f16) runs through cuDNN: "cuDNN <version> (<path>)", or why not (then im2col + cuBLASLt). */
export function cudnnInfo(): string {
  return cuda().addon.cudnnInfo();
}

/** A non-blocking CUDA stream. */
export class CudaStream {
  #h: Ptr | null;
  private constructor(h: Ptr) {
    this.#h = h;
  }
  static create(): CudaStream {
    return new CudaStream(cuda().addon.streamCreate());
  }
  get handle(): Ptr {
    if (this.#h === null) throw new DeviceError('CUDA stream used after dispose()');
    return this.#h;
  }
  synchronize(): void {
    cuda().addon.streamSync(this.handle);
  }
  /** Make this stream wait (on the device) until `e` has completed. */
  wait(e: CudaEvent): void {
    cuda().addon.streamWaitEvent(this.handle, e.handle);
  }
  dispose(): void {
    if (this.#h !== null) cuda().addon.streamDestroy(this.#h);
    this.#h = null;
  }
}
/** The stream tensor ops run on (null = the default stream). */
export function setComputeStream(s: CudaStream | null): void {
  cuda().addon.setComputeStream(s ? s.handle : 0);
}
export class CudaEvent {
  #h: Ptr | null;
  private constructor(h: Ptr) {
    this.#h = h;
  }
  static create(): CudaEvent {
    return new CudaEvent(cuda().addon.eventCreate());
  }
  get handle(): Ptr {
    if (this.#h === null) throw new DeviceError('CUDA event used after dispose()');
    return this.#h;
  }
  /** Record on a stream (default: the compute stream). */
  record(stream: CudaStream | null = null): this {
    cuda().addon.eventRecord(this.handle, stream ? stream.handle : cuda().addon.getComputeStream());
    return this;
  }
  synchronize(): void {
    cuda().addon.eventSync(this.handle);
  }
  /** Whether the recorded work has completed. */
  query(): boolean {
    return cuda().addon.eventQuery(this.handle);
  }
  /** Milliseconds from this event to `end` (both recorded and completed). */
  elapsedMs(end: CudaEvent): number {
    return cuda().addon.eventElapsed(this.handle, end.handle);
  }
  dispose(): void {
    if (this.#h !== null) cuda().addon.eventDestroy(this.#h);
    this.#h = null;
  }
}

/** Page-locked host memory (freed when the ArrayBuffer is garbage collected); needed for truly asynchronous copies. */
export function allocPinned(bytes: number): ArrayBuffer {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`allocPinned: bad size ${bytes}`);
  return cuda().addon.hostAlloc(bytes);
}
function bufferOf(src: ArrayBuffer | ArrayBufferView): [ArrayBuffer, number, number] {
  if (src instanceof ArrayBuffer) return [src, 0, src.byteLength];
  return [src.buffer as ArrayBuffer, src.byteOffset, src.byteLength];
}
function checkCuda(t: Tensor, what: string): void {
  if (t.device !== 'cuda') throw new DeviceError(`${what}: tensor is on ${t.device}, expected cuda`);
}
/**
 * Queue a copy of host bytes (a pinned buffer from allocPinned, or a view of one) into a CUDA tensor's storage
 * on `stream`. The host memory must stay untouched until the stream has passed the copy (record an event).
 */
export function copyToDeviceAsync(dst: Tensor, src: ArrayBuffer | ArrayBufferView, stream: CudaStream): void {
  checkCuda(dst, 'copyToDeviceAsync');
  const [buf, off, len] = bufferOf(src);
  const bytes = dst.numel * (cuda().bytesOf({ device: 'cuda', dtype: dst.dtype, numel: 1, handle: null }));
  if (len !== bytes) throw new ShapeError(`copyToDeviceAsync: ${len} host bytes for a tensor of ${bytes} bytes`);
  const v = dst.view;
  const base = (v.storage.handle as { ptr: Ptr }).ptr + v.offset * (bytes / Math.max(dst.numel, 1));
  cuda().addon.copyH2DAsync(base, buf, off, len, stream.handle);
}
/** Queue a copy of a CUDA tensor's bytes into host memory (pinned for asynchrony) on `stream`. */
export function copyToHostAsync(dst: ArrayBuffer | ArrayBufferView, src: Tensor, stream: CudaStream): void {
  checkCuda(src, 'copyToHostAsync');
  const [buf, off, len] = bufferOf(dst);
  const es = cuda().bytesOf({ device: 'cuda', dtype: src.dtype, numel: 1, handle: null });
  if (len !== src.numel * es) throw new ShapeError(`copyToHostAsync: ${len} host bytes for a tensor of ${src.numel * es} bytes`);
  const v = src.view;
  cuda().addon.copyD2HAsync(buf, off, (v.storage.handle as { ptr: Ptr }).ptr + v.offset * es, len, stream.handle);
}
