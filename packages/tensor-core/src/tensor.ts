import type { Backend, DeviceType, Storage, View } from './backend.js';
import { backendFor } from './device.js';
import { type DType, type HostArray, hostToF32 } from './dtype.js';
import { DisposedTensorError, ShapeError } from './errors.js';
import { recordAlloc, recordFree } from './memory.js';
import { trackTensor } from './scope.js';

/** Shared, refcounted ownership of one storage. */
class StorageRef {
  refs = 1;
  readonly bytes: number;
  constructor(
    readonly storage: Storage,
    readonly backend: Backend,
  ) {
    this.bytes = backend.bytesOf(storage);
    recordAlloc(storage.device, this.bytes);
  }
  release(): void {
    if (--this.refs === 0) {
      this.backend.release(this.storage);
      recordFree(this.storage.device, this.bytes);
    }
  }
}

// A tensor that is garbage collected without dispose() still gives its storage back.
const finalizer = new FinalizationRegistry<StorageRef>((ref) => ref.release());

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * An n-dimensional array on a device. Always contiguous (row-major); `reshape` and outer-dim
 * `slice` are views sharing storage, everything else produces a new tensor. Lifetimes are explicit:
 * call `dispose()` or create tensors inside `tidy()`.
 */
export class Tensor {
  readonly __isTensor = true;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: DeviceType;
  readonly #offset: number;
  #ref: StorageRef | null;

  /** @internal use the creation functions (`tensor`, `zeros`, ...) or ops instead. */
  constructor(ref: StorageRef, offset: number, shape: readonly number[]) {
    this.#ref = ref;
    this.#offset = offset;
    this.shape = Object.freeze([...shape]);
    this.dtype = ref.storage.dtype;
    this.device = ref.storage.device;
    finalizer.register(this, ref, this);
    trackTensor(this);
  }

  /** @internal wrap a fresh storage produced by a backend. */
  static fromStorage(storage: Storage, shape: readonly number[], backend: Backend = backendFor(storage.device)): Tensor {
    if (storage.numel !== numelOf(shape)) throw new ShapeError(`storage of ${storage.numel} elements cannot hold shape [${shape}]`);
    return new Tensor(new StorageRef(storage, backend), 0, shape);
  }

  /** @internal a view sharing this tensor's storage. */
  viewAs(shape: readonly number[], extraOffset = 0): Tensor {
    const ref = this.ref();
    ref.refs++;
    return new Tensor(ref, this.#offset + extraOffset, shape);
  }

  private ref(): StorageRef {
    if (!this.#ref) throw new DisposedTensorError(`tensor [${this.shape}] ${this.dtype} on ${this.device} was used after dispose()`);
    return this.#ref;
  }

  get view(): View {
    return { storage: this.ref().storage, offset: this.#offset, shape: this.shape, dtype: this.dtype };
  }
  get backend(): Backend {
    return this.ref().backend;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numelOf(this.shape);
  }
  get disposed(): boolean {
    return this.#ref === null;
  }
  /** Size of one dim; negative dims count from the end. */
  size(dim: number): number {
    const d = dim < 0 ? dim + this.shape.length : dim;
    if (d < 0 || d >= this.shape.length) throw new ShapeError(`dim ${dim} out of range for shape [${this.shape}]`);
    return this.shape[d];
  }

  /** Release this tensor's reference to its storage (idempotent). */
  dispose(): void {
    if (!this.#ref) return;
    finalizer.unregister(this);
    this.#ref.release();
    this.#ref = null;
  }

  /** The raw host representation (f16/bf16 as 16-bit patterns, i64 as BigInt64Array). Copies from the device. */
  toHost(): HostArray {
    return this.backend.download(this.view);
  }
  /** Values as f32 (host copy). */
  toFloat32Array(): Float32Array {
    const h = this.toHost();
    const f = hostToF32(this.dtype, h);
    return f === h ? Float32Array.from(f) : f;
  }
  /** Values as JS numbers (i64 converted exactly up to 2^53). */
  toArray(): number[] {
    const h = this.toHost();
    if (h instanceof BigInt64Array) return Array.from(h, (v) => Number(v));
    return Array.from(hostToF32(this.dtype, h));
  }
  item(): number {
    if (this.numel !== 1) throw new ShapeError(`item() needs a single element, got shape [${this.shape}]`);
    return this.toArray()[0];
  }
  toString(): string {
    return `Tensor([${this.shape}], ${this.dtype}, ${this.device})`;
  }
}
