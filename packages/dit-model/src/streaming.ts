import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, HostArray, Tensor } from '@framepack/tensor-core';
import type { TensorSource } from '@framepack/safetensors';
import type { DiTConfig } from './config.js';
import { DiTInputError } from './errors.js';
import { ParamScope } from './weights.js';

/**
 * Low-VRAM block streaming: the dual/single blocks' weights stay in host memory (pinned on CUDA, one packed
 * buffer per block) and a ring of `slots` device buffers holds the blocks in use. While block j computes, the
 * next blocks are copied in on a separate stream, so copies hide behind compute; a slot is refilled only after
 * the compute that read it has finished (device-side event wait). With slots >= the number of blocks every
 * block stays on the device after the first forward.
 */
export interface BlockStreamOptions {
  /** Blocks on the device at once (default 2: one computing, one arriving). */
  slots?: number;
}

interface BlockParam {
  key: string;
  shape: number[];
  offset: number;
  numel: number;
}
interface HostBlock {
  name: string;
  index: number;
  params: BlockParam[];
  numel: number;
  /** The block's parameters packed in `params` order, in the model dtype's host format. */
  host: HostArray;
}
interface Slot {
  tensor: Tensor;
  /** Block currently held (or being copied in). */
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
  /** Queue the copy of `block` into `slot` (after the compute that last read the slot). */
  load(slot: Slot, block: HostBlock): void;
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
    return T.allocHost(dtype, numel);
  }
  load(slot: Slot, block: HostBlock): void {
    const src = T.fromHost(block.host, [block.numel], slot.tensor.dtype, this.device);
    const region = T.slice(slot.tensor, 0, 0, block.numel);
    T.writeRegion(region, src, [0]);
    region.dispose();
    src.dispose();
  }
  wait(): void {}
  released(): void {}
  dispose(): void {}
}

/** Pinned host buffers, a copy stream and per-slot events: copies overlap the compute stream. */
class CudaTransfer implements Transfer {
  readonly #stream = T.CudaStream.create();
  allocHost(dtype: DType, numel: number): HostArray {
    const bytes = numel * T.BYTES_PER_ELEMENT[dtype];
    const buf = T.allocPinned(bytes);
    switch (dtype) {
      case 'f32':
        return new Float32Array(buf, 0, numel);
      case 'f16':
      case 'bf16':
        return new Uint16Array(buf, 0, numel);
      default:
        throw new DiTInputError(`block streaming supports float weights, not ${dtype}`);
    }
  }
  #events(slot: Slot): { ready: T.CudaEvent; done: T.CudaEvent } {
    return (slot.sync ??= { ready: T.CudaEvent.create(), done: T.CudaEvent.create() }) as { ready: T.CudaEvent; done: T.CudaEvent };
  }
  load(slot: Slot, block: HostBlock): void {
    const ev = this.#events(slot);
    // the copy may only overwrite the slot once the compute that read its previous block has run
    this.#stream.wait(ev.done);
    const region = T.slice(slot.tensor, 0, 0, block.numel);
    T.copyToDeviceAsync(region, block.host, this.#stream);
    region.dispose();
    ev.ready.record(this.#stream);
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
      const ev = s.sync as { ready: T.CudaEvent; done: T.CudaEvent } | null;
      ev?.ready.dispose();
      ev?.done.dispose();
    }
    this.#stream.dispose();
  }
}

/** The dual/single block names of a config, in execution order. */
export function blockNames(c: DiTConfig): string[] {
  return [
    ...Array.from({ length: c.numLayers }, (_, i) => `transformer_blocks.${i}`),
    ...Array.from({ length: c.numSingleLayers }, (_, i) => `single_transformer_blocks.${i}`),
  ];
}
/** Whether a state-dict key belongs to a streamed block. */
export const isBlockKey = (key: string) => /^(single_)?transformer_blocks\.\d+\./.test(key);

export class BlockStreamer {
  readonly #blocks = new Map<string, HostBlock>();
  readonly #slots: Slot[] = [];
  readonly #transfer: Transfer;
  readonly order: readonly string[];
  #loads = 0;

  private constructor(order: string[], blocks: HostBlock[], transfer: Transfer, slots: number, dtype: DType, device: DeviceType) {
    this.order = order;
    this.#transfer = transfer;
    for (const b of blocks) this.#blocks.set(b.name, b);
    const maxNumel = Math.max(1, ...blocks.map((b) => b.numel));
    for (let i = 0; i < Math.min(slots, Math.max(blocks.length, 1)); i++)
      this.#slots.push({ tensor: T.keep(T.zeros([maxNumel], { dtype, device })), tag: null, busy: false, views: new Map(), sync: null });
  }

  /**
   * Read every block's parameters from `source` (a safetensors source or a record of tensors, already
   * validated against the config) into host buffers of `dtype`.
   */
  static fromSource(config: DiTConfig, source: TensorSource | Record<string, Tensor>, shapes: ReadonlyMap<string, number[]>, opts: { dtype: DType; device: DeviceType } & BlockStreamOptions): BlockStreamer {
    const slots = opts.slots ?? 2;
    if (!Number.isInteger(slots) || slots < 1) throw new DiTInputError(`block streaming needs slots >= 1 (2 or more to overlap copies), got ${opts.slots}`);
    const transfer: Transfer = opts.device === 'cuda' ? new CudaTransfer() : new SyncTransfer(opts.device);
    const order = blockNames(config);
    const read = (key: string): Tensor => {
      if (typeof (source as TensorSource).tensor === 'function') return (source as TensorSource).tensor(key, { dtype: opts.dtype, device: 'cpu' });
      const t = (source as Record<string, Tensor>)[key];
      const moved = T.toDevice(t, 'cpu');
      const cast = T.cast(moved, opts.dtype);
      if (cast !== moved) moved.dispose();
      return cast;
    };
    const blocks = order.map((name, index) => {
      const keys = [...shapes.keys()].filter((k) => k.startsWith(`${name}.`));
      let offset = 0;
      const params = keys.map((key) => {
        const shape = shapes.get(key)!;
        const numel = shape.reduce((a, b) => a * b, 1);
        const p = { key, shape, offset, numel };
        offset += numel;
        return p;
      });
      const host = transfer.allocHost(opts.dtype, offset);
      for (const p of params) {
        const t = read(p.key);
        (host as Float32Array).set(t.toHost() as Float32Array, p.offset);
        t.dispose();
      }
      return { name, index, params, numel: offset, host };
    });
    return new BlockStreamer(order, blocks, transfer, slots, opts.dtype, opts.device);
  }

  /** Device slots (each as large as the largest block). */
  get slots(): number {
    return this.#slots.length;
  }
  /** Host -> device block copies so far (a resident block is not copied again). */
  get loads(): number {
    return this.#loads;
  }
  /** Bytes of the device slots. */
  get deviceBytes(): number {
    return this.#slots.reduce((s, x) => s + x.tensor.numel * T.BYTES_PER_ELEMENT[x.tensor.dtype], 0);
  }
  /** Bytes of the host copies of all blocks. */
  get hostBytes(): number {
    let n = 0;
    for (const b of this.#blocks.values()) n += b.host.byteLength;
    return n;
  }

  #slotOf(index: number): Slot {
    return this.#slots[index % this.#slots.length];
  }
  #queue(index: number): void {
    const block = this.#blocks.get(this.order[index])!;
    const slot = this.#slotOf(index);
    if (slot.tag === block.name || slot.busy) return;
    for (const v of slot.views.values()) v.dispose();
    slot.views.clear();
    slot.tag = block.name;
    this.#transfer.load(slot, block);
    this.#loads++;
    for (const p of block.params) {
      const flat = T.slice(slot.tensor, 0, p.offset, p.offset + p.numel);
      slot.views.set(p.key, T.keep(T.reshape(flat, p.shape)));
      flat.dispose();
    }
  }

  /** The block's parameters on the device, waiting for its copy if needed; queues copies of the next blocks. */
  acquire(name: string): ParamScope {
    const index = this.order.indexOf(name);
    if (index < 0) throw new DiTInputError(`no streamed block named ${name}`);
    const slot = this.#slotOf(index);
    if (slot.busy && slot.tag !== name) throw new DiTInputError(`block ${name} needs the slot ${slot.tag} still holds: release blocks in order`);
    this.#queue(index);
    slot.busy = true;
    // prefetch into the other slots (each waits on the device for the compute that last used it)
    for (let k = index + 1; k < Math.min(index + this.#slots.length, this.order.length); k++) this.#queue(k);
    this.#transfer.wait(slot);
    return new ParamScope(slot.views).at(name);
  }

  /**
   * The compute that reads the block has been queued: its slot may be refilled once that compute has run.
   * With `prefetch` the slot starts receiving the block that uses it next (after the last block: the first
   * blocks of the next forward); a forward that stops early (a skipped step) passes false.
   */
  release(name: string, prefetch = true): void {
    const index = this.order.indexOf(name);
    const slot = this.#slotOf(index);
    if (index < 0 || slot.tag !== name || !slot.busy) return;
    slot.busy = false;
    this.#transfer.released(slot);
    if (!prefetch) return;
    const next = index + this.#slots.length;
    if (next < this.order.length) this.#queue(next);
    else if (index === this.order.length - 1) for (let k = 0; k < Math.min(this.#slots.length, this.order.length); k++) this.#queue(k);
  }

  /** Release every acquired block (after a forward that threw half-way), without prefetching. */
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
