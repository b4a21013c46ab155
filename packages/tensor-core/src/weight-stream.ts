/**
 * Low-VRAM weight streaming, shared by every model that runs a stack of layers one after the other (the DiT's
 * dual/single blocks, the LLaMA decoder layers, the SigLIP encoder layers).
 *
 * Each group (one block/layer) keeps its parameters in one packed host buffer (pinned on CUDA) and a ring of
 * `slots` device buffers holds the groups in use. While group j computes, the next groups are copied in on a
 * separate stream, so copies hide behind compute; a slot is refilled only after the compute that read it has
 * finished (device-side event wait). With slots >= the number of groups every group stays on the device after
 * the first pass. On devices without async copies (the CPU backend) the same schedule runs with synchronous
 * copies, so the CPU tests exercise the code path the GPU runs.
 */
import type { DeviceType } from './backend.js';
import { allocHost, BYTES_PER_ELEMENT, type DType, type HostArray } from './dtype.js';
import { TensorError } from './errors.js';
import { cast, fromHost, reshape, slice, toDevice, writeRegion, zeros } from './ops.js';
import { keep } from './scope.js';
import type { Tensor } from './tensor.js';
import { allocPinned, copyToDeviceAsync, CudaEvent, CudaStream } from './cuda/index.js';

/** Bad streaming options or an out-of-order acquire/release. */
export class WeightStreamError extends TensorError {
  constructor(message: string) {
    super(message, 'E_STREAM');
  }
}

/** One streamed unit (a block or layer): its parameters, in the order they are packed. */
export interface StreamGroup {
  name: string;
  params: readonly { key: string; shape: readonly number[] }[];
}

export interface WeightStreamOptions {
  /** Storage dtype of the streamed weights (a float type). */
  dtype: DType;
  device: DeviceType;
  /** Groups on the device at once (default 2: one computing, one arriving). */
  slots?: number;
  /**
   * Where a group's bytes come from each time it is copied in:
   * - 'packed' (default): read once at creation into one host buffer per group (pinned on CUDA), copied from there;
   * - 'source': read with `read` again on every copy into a per-slot staging buffer (pinned on CUDA), so host memory
   *   holds only the slots' staging buffers (for a model that runs once per job, e.g. the 8B text encoder, whose
   *   host copy would otherwise cost 13 GiB). `read` must stay usable for the streamer's lifetime.
   */
  hostCopy?: 'packed' | 'source';
}

interface PackedParam {
  key: string;
  shape: number[];
  offset: number;
  numel: number;
}
interface HostGroup {
  name: string;
  params: PackedParam[];
  numel: number;
  /** The group's parameters packed in `params` order, in the model dtype's host format (null: read on each copy). */
  host: HostArray | null;
}
interface Slot {
  tensor: Tensor;
  /** 'source' mode: the host buffer the slot's next copy is read into. */
  staging: HostArray | null;
  /** Group currently held (or being copied in). */
  tag: string | null;
  /** Acquired and its compute not yet released: never refilled. */
  busy: boolean;
  views: Map<string, Tensor>;
  /** Transfer-specific state (CUDA events). */
  sync: unknown;
}

/** How bytes move from host buffers into slots. */
interface Transfer {
  allocHost(dtype: DType, numel: number): HostArray;
  /** Queue the copy of `numel` values of `host` into `slot` (after the compute that last read the slot). */
  load(slot: Slot, host: HostArray, numel: number): void;
  /** Return once the slot's previous copy has left its host buffer (before refilling a staging buffer). */
  copied(slot: Slot): void;
  /** Return once the slot's copy has landed. */
  wait(slot: Slot): void;
  /** The compute reading `slot` has been queued. */
  released(slot: Slot): void;
  dispose(slots: Slot[]): void;
}

/** Synchronous copies (CPU, or any device without async copies): fromHost + an in-place region write. */
class SyncTransfer implements Transfer {
  constructor(readonly device: DeviceType) {}
  allocHost(dtype: DType, numel: number): HostArray {
    return allocHost(dtype, numel);
  }
  load(slot: Slot, host: HostArray, numel: number): void {
    const src = fromHost(host.length === numel ? host : (host.subarray(0, numel) as HostArray), [numel], slot.tensor.dtype, this.device);
    const region = slice(slot.tensor, 0, 0, numel);
    writeRegion(region, src, [0]);
    region.dispose();
    src.dispose();
  }
  copied(): void {}
  wait(): void {}
  released(): void {}
  dispose(): void {}
}

type SlotEvents = { ready: CudaEvent; done: CudaEvent };

/** Pinned host buffers, a copy stream and per-slot events: copies overlap the compute stream. */
class CudaTransfer implements Transfer {
  readonly #stream = CudaStream.create();
  allocHost(dtype: DType, numel: number): HostArray {
    const buf = allocPinned(numel * BYTES_PER_ELEMENT[dtype]);
    switch (dtype) {
      case 'f32':
        return new Float32Array(buf, 0, numel);
      case 'f16':
      case 'bf16':
        return new Uint16Array(buf, 0, numel);
      default:
        throw new WeightStreamError(`weight streaming supports float weights (f32, f16, bf16), not ${dtype}`);
    }
  }
  #events(slot: Slot): SlotEvents {
    return (slot.sync ??= { ready: CudaEvent.create(), done: CudaEvent.create() }) as SlotEvents;
  }
  load(slot: Slot, host: HostArray, numel: number): void {
    const ev = this.#events(slot);
    // the copy may only overwrite the slot once the compute that read its previous group has run
    this.#stream.wait(ev.done);
    const region = slice(slot.tensor, 0, 0, numel);
    copyToDeviceAsync(region, host.length === numel ? host : (host.subarray(0, numel) as HostArray), this.#stream);
    region.dispose();
    ev.ready.record(this.#stream);
  }
  copied(slot: Slot): void {
    // the staging buffer is read by the async copy until its event fires
    if (slot.sync) this.#events(slot).ready.synchronize();
  }
  wait(slot: Slot): void {
    // host-side wait: kernel launches run ahead of the GPU, so this rarely idles it
    this.#events(slot).ready.synchronize();
  }
  released(slot: Slot): void {
    this.#events(slot).done.record();
  }
  dispose(slots: Slot[]): void {
    this.#stream.synchronize();
    for (const s of slots) {
      const ev = s.sync as SlotEvents | null;
      ev?.ready.dispose();
      ev?.done.dispose();
    }
    this.#stream.dispose();
  }
}

/** Read a group's parameters one tensor at a time into `host` at their offsets (moved to the host, cast, disposed). */
function readInto(group: HostGroup, host: HostArray, read: (key: string) => Tensor, dtype: DType): void {
  for (const p of group.params) {
    const t = read(p.key);
    if (t.numel !== p.numel) {
      t.dispose();
      throw new WeightStreamError(`weight streaming: ${p.key} has ${t.numel} values, expected shape [${p.shape}]`);
    }
    const onHost = toDevice(t, 'cpu');
    const typed = cast(onHost, dtype);
    (host as Float32Array).set(typed.toHost() as Float32Array, p.offset);
    typed.dispose();
    onHost.dispose();
    t.dispose();
  }
}

/** Bytes of one group's parameters in `dtype`. */
export function streamGroupBytes(group: StreamGroup, dtype: DType): number {
  return group.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0) * BYTES_PER_ELEMENT[dtype];
}

/**
 * Groups of parameters in host buffers, streamed through a ring of device slots in a fixed order. Use:
 * `acquire(name)` (waits for the group's copy, queues the next ones) -> compute -> `release(name)`.
 */
export class WeightStreamer {
  readonly #groups = new Map<string, HostGroup>();
  readonly #slots: Slot[] = [];
  readonly #transfer: Transfer;
  /** 'source' mode: where each copy reads its group from. */
  readonly #read: ((key: string) => Tensor) | null;
  readonly #dtype: DType;
  /** Group names in execution order. */
  readonly order: readonly string[];
  #loads = 0;

  private constructor(groups: HostGroup[], transfer: Transfer, slots: number, dtype: DType, device: DeviceType, read: ((key: string) => Tensor) | null) {
    this.order = groups.map((g) => g.name);
    this.#transfer = transfer;
    this.#read = read;
    this.#dtype = dtype;
    for (const g of groups) this.#groups.set(g.name, g);
    const maxNumel = Math.max(1, ...groups.map((g) => g.numel));
    for (let i = 0; i < Math.min(slots, Math.max(groups.length, 1)); i++)
      this.#slots.push({
        tensor: keep(zeros([maxNumel], { dtype, device })),
        staging: read ? transfer.allocHost(dtype, maxNumel) : null,
        tag: null, busy: false, views: new Map(), sync: null,
      });
  }

  /**
   * Read every group's parameters with `read` (one tensor at a time, any device/dtype: it is moved to the host,
   * cast, copied into the group's packed buffer and disposed, so no second full copy is ever held) and set up
   * the device slots. `groups` is the execution order. What `read` returns is disposed: to stream tensors the
   * caller keeps, return a view (`T.reshape(t, t.shape)`).
   */
  static create(groups: readonly StreamGroup[], read: (key: string) => Tensor, opts: WeightStreamOptions): WeightStreamer {
    const slots = opts.slots ?? 2;
    if (!Number.isInteger(slots) || slots < 1) throw new WeightStreamError(`weight streaming needs slots >= 1 (2 or more to overlap copies), got ${opts.slots}`);
    if (new Set(groups.map((g) => g.name)).size !== groups.length) throw new WeightStreamError('weight streaming: group names must be unique');
    const mode = opts.hostCopy ?? 'packed';
    if (mode !== 'packed' && mode !== 'source') throw new WeightStreamError(`weight streaming: hostCopy must be 'packed' or 'source', got ${String(opts.hostCopy)}`);
    const transfer: Transfer = opts.device === 'cuda' ? new CudaTransfer() : new SyncTransfer(opts.device);
    const packed: HostGroup[] = [];
    try {
      for (const g of groups) {
        let offset = 0;
        const params = g.params.map((p) => {
          const numel = p.shape.reduce((a, b) => a * b, 1);
          const packedParam = { key: p.key, shape: [...p.shape], offset, numel };
          offset += numel;
          return packedParam;
        });
        const group: HostGroup = { name: g.name, params, numel: offset, host: null };
        if (mode === 'packed') {
          group.host = transfer.allocHost(opts.dtype, offset);
          readInto(group, group.host, read, opts.dtype);
        }
        packed.push(group);
      }
    } catch (e) {
      transfer.dispose([]);
      throw e;
    }
    return new WeightStreamer(packed, transfer, slots, opts.dtype, opts.device, mode === 'source' ? read : null);
  }

  /** Device slots (each as large as the largest group). */
  get slots(): number {
    return this.#slots.length;
  }
  /** Host -> device group copies so far (a group still in its slot is not copied again). */
  get loads(): number {
    return this.#loads;
  }
  /** Bytes of the device slots. */
  get deviceBytes(): number {
    return this.#slots.reduce((s, x) => s + x.tensor.numel * BYTES_PER_ELEMENT[x.tensor.dtype], 0);
  }
  /** Bytes of host memory held: the packed copies of all groups, or the slots' staging buffers ('source' mode). */
  get hostBytes(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.host?.byteLength ?? 0;
    for (const s of this.#slots) n += s.staging?.byteLength ?? 0;
    return n;
  }
  has(name: string): boolean {
    return this.#groups.has(name);
  }

  #slotOf(index: number): Slot {
    return this.#slots[index % this.#slots.length];
  }
  #queue(index: number): void {
    const group = this.#groups.get(this.order[index])!;
    const slot = this.#slotOf(index);
    if (slot.tag === group.name || slot.busy) return;
    for (const v of slot.views.values()) v.dispose();
    slot.views.clear();
    slot.tag = group.name;
    if (group.host) this.#transfer.load(slot, group.host, group.numel);
    else {
      // read the group again into the slot's staging buffer, once its previous copy has left it
      this.#transfer.copied(slot);
      readInto(group, slot.staging!, this.#read!, this.#dtype);
      this.#transfer.load(slot, slot.staging!, group.numel);
    }
    this.#loads++;
    for (const p of group.params) {
      const flat = slice(slot.tensor, 0, p.offset, p.offset + p.numel);
      slot.views.set(p.key, keep(reshape(flat, p.shape)));
      flat.dispose();
    }
  }

  /**
   * The group's parameters on the device (keyed by their full keys; the views stay owned by the streamer),
   * waiting for its copy if needed; queues copies of the next groups.
   */
  acquire(name: string): ReadonlyMap<string, Tensor> {
    const index = this.order.indexOf(name);
    if (index < 0) throw new WeightStreamError(`no streamed group named ${name}`);
    const slot = this.#slotOf(index);
    if (slot.busy && slot.tag !== name) throw new WeightStreamError(`group ${name} needs the slot ${slot.tag} still holds: release groups in order`);
    this.#queue(index);
    slot.busy = true;
    // prefetch into the other slots (each waits on the device for the compute that last used it)
    for (let k = index + 1; k < Math.min(index + this.#slots.length, this.order.length); k++) this.#queue(k);
    this.#transfer.wait(slot);
    return slot.views;
  }

  /**
   * The compute that reads the group has been queued: its slot may be refilled once that compute has run.
   * With `prefetch` the slot starts receiving the group that uses it next (after the last group: the first
   * groups of the next pass); a pass that stops early passes false.
   */
  release(name: string, prefetch = true): void {
    const index = this.order.indexOf(name);
    if (index < 0) return;
    const slot = this.#slotOf(index);
    if (slot.tag !== name || !slot.busy) return;
    slot.busy = false;
    this.#transfer.released(slot);
    if (!prefetch) return;
    const next = index + this.#slots.length;
    if (next < this.order.length) this.#queue(next);
    else if (index === this.order.length - 1) for (let k = 0; k < Math.min(this.#slots.length, this.order.length); k++) this.#queue(k);
  }

  /** Release every acquired group (after a pass that threw half-way), without prefetching. */
  releaseAll(): void {
    for (const s of this.#slots) if (s.busy && s.tag) this.release(s.tag, false);
  }

  dispose(): void {
    this.#transfer.dispose(this.#slots);
    for (const s of this.#slots) {
      for (const v of s.views.values()) v.dispose();
      s.tensor.dispose();
    }
    this.#slots.length = 0;
  }
}
