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
 *
 * With `weights8bit` ('int8' | 'fp8') the groups' 2-D matrices (`isQuantizable8`) are quantized per output row
 * while packing and travel as 8-bit codes + f32 row scales (about half the bf16 bytes); biases and norms stay in
 * the model dtype. After a group's copy lands, `acquire` dequantizes its matrices on the compute stream into one
 * device scratch (model dtype) that the group's matrix views point into.
 */
import type { DeviceType } from './backend.js';
import { BYTES_PER_ELEMENT, type DType, type HostArray } from './dtype.js';
import { TensorError } from './errors.js';
import { cast, fromHost, reshape, slice, toDevice, writeRegion, zeros } from './ops.js';
import { dequantize8Into } from './quant8.js';
import { assertWeight8Format, isQuantizable8, quantize8Host, quantize8HostBf16, type Weight8Format } from './quant8-codec.js';
import { keep } from './scope.js';
import type { Tensor } from './tensor.js';
import { allocPinned, copyToDeviceAsync, CudaEvent, CudaStream, quantize8HostNative } from './cuda/index.js';

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
  /**
   * Store the groups' matrices (2-D, >= 16 columns: `isQuantizable8`) in 8 bits with per-row f32 scales: 'int8'
   * (weight-only int8) or 'fp8' (E4M3). Halves the bytes copied per pass; costs one device scratch of the largest
   * group's matrices in the model dtype and a dequantize pass per acquire. Default: none (model dtype).
   */
  weights8bit?: Weight8Format;
  /**
   * Fill `dst` with a parameter's values stored as `dtype` (little-endian, exactly dst.byteLength bytes) and return
   * true, or return false when it cannot (then `read` is used). A checkpoint that stores the weights in the model
   * dtype reads them straight into the pinned buffer this way: no intermediate tensor (safetensors `directReaderAs`).
   */
  readDirect?: (key: string, dst: Uint8Array) => boolean;
}

/** Where one parameter lives: in the model-dtype part (`offset`), or quantized (codes/scales/scratch offsets). */
interface PackedParam {
  key: string;
  shape: number[];
  numel: number;
  /** Offset in the model-dtype part (plain parameters), in elements. */
  offset: number;
  /** Quantized matrices: byte offset of the codes, f32 offset of the row scales, element offset in the scratch. */
  q8: { codes: number; scales: number; scratch: number } | null;
}
/** The sizes of a group's three parts: model-dtype values, 8-bit codes (bytes), f32 scales; and its scratch. */
interface PartSizes {
  plain: number;
  codes: number;
  scales: number;
  scratch: number;
}
/** Host (or device slot) buffers of one group's parts. */
interface Parts<H, C, S> {
  plain: H;
  codes: C;
  scales: S;
}
type HostParts = Parts<HostArray, Uint8Array, Float32Array>;
interface HostGroup {
  name: string;
  params: PackedParam[];
  sizes: PartSizes;
  /** The group's parts packed in `params` order (null: read on each copy). */
  host: HostParts | null;
}
interface Slot {
  parts: Parts<Tensor, Tensor | null, Tensor | null>;
  /** 'source' mode: the host buffers the slot's next copy is read into. */
  staging: HostParts | null;
  /** Group currently held (or being copied in). */
  tag: string | null;
  /** Acquired and its compute not yet released: never refilled. */
  busy: boolean;
  views: Map<string, Tensor>;
  /** Transfer-specific state (CUDA events). */
  sync: unknown;
}

/** One host -> device copy: `src` (exactly as long as `dst`) into the slot region `dst`. */
type Copy = [dst: Tensor, src: HostArray];
/** How bytes move from host buffers into slots. */
interface Transfer {
  /** Host memory for packed groups or staging (pinned on CUDA). */
  allocBytes(bytes: number): ArrayBuffer;
  /** Queue the copies into `slot` (after the compute that last read the slot). */
  load(slot: Slot, copies: Copy[]): void;
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
  allocBytes(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }
  load(_slot: Slot, copies: Copy[]): void {
    for (const [dst, host] of copies) {
      const src = fromHost(host, [host.length], dst.dtype, this.device);
      writeRegion(dst, src, [0]);
      src.dispose();
    }
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
  allocBytes(bytes: number): ArrayBuffer {
    return allocPinned(bytes);
  }
  #events(slot: Slot): SlotEvents {
    return (slot.sync ??= { ready: CudaEvent.create(), done: CudaEvent.create() }) as SlotEvents;
  }
  load(slot: Slot, copies: Copy[]): void {
    const ev = this.#events(slot);
    // the copy may only overwrite the slot once the compute that read its previous group has run
    this.#stream.wait(ev.done);
    for (const [dst, host] of copies) copyToDeviceAsync(dst, host, this.#stream);
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

/**
 * Reads groups' parameters into host buffers: straight into the buffer with `readDirect` when the source stores the
 * model dtype, else one tensor at a time with `read` (moved to the host, cast to the model dtype, disposed).
 * Quantized matrices are quantized from their model-dtype values, so they match a resident model's.
 */
class GroupReader {
  /** bf16 bits of the matrix being quantized (reused: one matrix at a time). */
  #bits = new Uint16Array(0);
  constructor(
    readonly read: (key: string) => Tensor,
    readonly readDirect: ((key: string, dst: Uint8Array) => boolean) | undefined,
    readonly dtype: DType,
    readonly format: Weight8Format | null,
  ) {}

  fill(group: HostGroup, host: HostParts): void {
    const bpe = BYTES_PER_ELEMENT[this.dtype];
    for (const p of group.params) {
      if (p.q8 && this.format) this.#quantized(p, host);
      else if (!this.readDirect?.(p.key, new Uint8Array(host.plain.buffer, host.plain.byteOffset + p.offset * bpe, p.numel * bpe)))
        this.#viaTensor(p, (typed) => (host.plain as Float32Array).set(typed.toHost() as Float32Array, p.offset));
    }
  }

  #quantized(p: PackedParam, host: HostParts): void {
    const [rows, cols] = p.shape;
    const codes = host.codes.subarray(p.q8!.codes, p.q8!.codes + p.numel), scales = host.scales.subarray(p.q8!.scales, p.q8!.scales + rows);
    if (this.dtype === 'bf16' && this.readDirect) {
      if (this.#bits.length < p.numel) this.#bits = new Uint16Array(p.numel);
      const bits = this.#bits.subarray(0, p.numel);
      if (this.readDirect(p.key, new Uint8Array(bits.buffer, 0, p.numel * 2))) return quantizeMatrix(bits, rows, cols, this.format!, codes, scales);
    }
    // bf16 (the usual storage) from its bit patterns, without widening the matrix to f32 first
    this.#viaTensor(p, (typed) => quantizeMatrix(this.dtype === 'bf16' ? (typed.toHost() as Uint16Array) : typed.toFloat32Array(), rows, cols, this.format!, codes, scales));
  }

  #viaTensor(p: PackedParam, use: (typed: Tensor) => void): void {
    const t = this.read(p.key);
    if (t.numel !== p.numel) {
      t.dispose();
      throw new WeightStreamError(`weight streaming: ${p.key} has ${t.numel} values, expected shape [${p.shape}]`);
    }
    const onHost = toDevice(t, 'cpu');
    const typed = cast(onHost, this.dtype);
    try {
      use(typed);
    } finally {
      typed.dispose();
      onHost.dispose();
      t.dispose();
    }
  }
}

/**
 * One matrix into its codes and row scales: on all cores with the addon when it is loaded, else with the TypeScript
 * definition (the same bytes: test/native-quantize.test.ts). `src`: f32 values or bf16 bits.
 */
function quantizeMatrix(src: Float32Array | Uint16Array, rows: number, cols: number, format: Weight8Format, codes: Uint8Array, scales: Float32Array): void {
  if (quantize8HostNative(src, rows, cols, format, codes, scales)) return;
  if (src instanceof Uint16Array) quantize8HostBf16(src, rows, cols, format, codes, scales);
  else quantize8Host(src, rows, cols, format, codes, scales);
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;
/** Scratch offsets are multiples of 16 bytes (the dequantize kernel's vector stores). */
const scratchAlign = (dtype: DType) => 16 / BYTES_PER_ELEMENT[dtype];

/** Lay out a group's parameters in its parts (plain values, 8-bit codes, scales, scratch). */
function layout(g: StreamGroup, dtype: DType, format: Weight8Format | null): { params: PackedParam[]; sizes: PartSizes } {
  const sizes: PartSizes = { plain: 0, codes: 0, scales: 0, scratch: 0 };
  const params = g.params.map((p): PackedParam => {
    const numel = p.shape.reduce((a, b) => a * b, 1);
    const base = { key: p.key, shape: [...p.shape], numel };
    if (format && isQuantizable8(p.shape)) {
      const q8 = { codes: sizes.codes, scales: sizes.scales, scratch: sizes.scratch };
      sizes.codes = align(sizes.codes + numel, 16); // 16-byte aligned codes: the kernel's vector loads
      sizes.scales += p.shape[0];
      sizes.scratch = align(sizes.scratch + numel, scratchAlign(dtype));
      return { ...base, offset: 0, q8 };
    }
    const offset = sizes.plain;
    sizes.plain += numel;
    return { ...base, offset, q8: null };
  });
  return { params, sizes };
}

/** Bytes of the parts in one host buffer: plain values, then scales, then codes (each start 16-byte aligned). */
function partsBytes(sizes: PartSizes, dtype: DType): [plain: number, scales: number, codes: number, total: number] {
  const plainBytes = sizes.plain * BYTES_PER_ELEMENT[dtype];
  const scales = align(plainBytes, 16), codes = align(scales + sizes.scales * 4, 16);
  return [0, scales, codes, sizes.codes + sizes.scales > 0 ? codes + sizes.codes : plainBytes];
}
function carveParts(buf: ArrayBuffer, sizes: PartSizes, dtype: DType): HostParts {
  const [, so, co] = partsBytes(sizes, dtype);
  const plain = dtype === 'f32' ? new Float32Array(buf, 0, sizes.plain) : new Uint16Array(buf, 0, sizes.plain);
  return {
    plain,
    scales: sizes.scales > 0 ? new Float32Array(buf, so, sizes.scales) : new Float32Array(0),
    codes: sizes.codes > 0 ? new Uint8Array(buf, co, sizes.codes) : new Uint8Array(0),
  };
}

/**
 * Bytes of one group as streamed: what each copy moves (and the packed host buffer holds, less alignment padding)
 * and, with 8-bit weights, the scratch its matrices are dequantized into (0 without).
 */
export function streamGroupLayout(group: StreamGroup, dtype: DType, weights8bit?: Weight8Format | null): { copyBytes: number; scratchBytes: number } {
  const { sizes } = layout(group, dtype, weights8bit ?? null);
  return { copyBytes: sizes.plain * BYTES_PER_ELEMENT[dtype] + sizes.codes + sizes.scales * 4, scratchBytes: sizes.scratch * BYTES_PER_ELEMENT[dtype] };
}
/** Bytes one copy of the group moves: its parameters in `dtype`, or with 8-bit weights its codes + scales + the rest. */
export function streamGroupBytes(group: StreamGroup, dtype: DType, weights8bit?: Weight8Format | null): number {
  return streamGroupLayout(group, dtype, weights8bit).copyBytes;
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
  readonly #reader: GroupReader | null;
  readonly #format: Weight8Format | null;
  /** 8-bit mode: the model-dtype buffer the acquired group's matrices are dequantized into, and whose they are. */
  #scratch: Tensor | null = null;
  #scratchTag: string | null = null;
  /** Group names in execution order. */
  readonly order: readonly string[];
  #loads = 0;

  private constructor(groups: HostGroup[], transfer: Transfer, slots: number, dtype: DType, device: DeviceType, reader: GroupReader | null, format: Weight8Format | null) {
    this.order = groups.map((g) => g.name);
    this.#transfer = transfer;
    this.#reader = reader;
    this.#format = format;
    for (const g of groups) this.#groups.set(g.name, g);
    const max: PartSizes = { plain: 1, codes: 0, scales: 0, scratch: 0 };
    for (const g of groups) for (const k of ['plain', 'codes', 'scales', 'scratch'] as const) max[k] = Math.max(max[k], g.sizes[k]);
    try {
      if (max.scratch > 0) this.#scratch = keep(zeros([max.scratch], { dtype, device }));
      for (let i = 0; i < Math.min(slots, Math.max(groups.length, 1)); i++)
        this.#slots.push({
          parts: {
            plain: keep(zeros([max.plain], { dtype, device })),
            codes: max.codes > 0 ? keep(zeros([max.codes], { dtype: 'u8', device })) : null,
            scales: max.scales > 0 ? keep(zeros([max.scales], { dtype: 'f32', device })) : null,
          },
          staging: reader ? carveParts(transfer.allocBytes(partsBytes(max, dtype)[3]), max, dtype) : null,
          tag: null, busy: false, views: new Map(), sync: null,
        });
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * Read every group's parameters with `read` (one tensor at a time, any device/dtype: it is moved to the host,
   * cast (and quantized, with `weights8bit`), copied into the group's packed buffer and disposed, so no second full
   * copy is ever held), or straight into the buffer with `opts.readDirect` where it can, and set up the device
   * slots. `groups` is the execution order. What `read` returns is disposed: to stream tensors the caller keeps,
   * return a view (`T.reshape(t, t.shape)`).
   */
  static create(groups: readonly StreamGroup[], read: (key: string) => Tensor, opts: WeightStreamOptions): WeightStreamer {
    const slots = opts.slots ?? 2;
    if (!Number.isInteger(slots) || slots < 1) throw new WeightStreamError(`weight streaming needs slots >= 1 (2 or more to overlap copies), got ${opts.slots}`);
    if (new Set(groups.map((g) => g.name)).size !== groups.length) throw new WeightStreamError('weight streaming: group names must be unique');
    const mode = opts.hostCopy ?? 'packed';
    if (mode !== 'packed' && mode !== 'source') throw new WeightStreamError(`weight streaming: hostCopy must be 'packed' or 'source', got ${String(opts.hostCopy)}`);
    if (opts.dtype !== 'f32' && opts.dtype !== 'f16' && opts.dtype !== 'bf16') throw new WeightStreamError(`weight streaming supports float weights (f32, f16, bf16), not ${opts.dtype}`);
    const format = opts.weights8bit ?? null;
    if (format !== null) assertWeight8Format(format);
    const transfer: Transfer = opts.device === 'cuda' ? new CudaTransfer() : new SyncTransfer(opts.device);
    const reader = new GroupReader(read, opts.readDirect, opts.dtype, format);
    const packed: HostGroup[] = [];
    try {
      for (const g of groups) {
        const { params, sizes } = layout(g, opts.dtype, format);
        const group: HostGroup = { name: g.name, params, sizes, host: null };
        if (mode === 'packed') {
          // quantized group by group: only this group's host buffer (and one tensor being read) is held extra
          group.host = carveParts(transfer.allocBytes(partsBytes(sizes, opts.dtype)[3]), sizes, opts.dtype);
          reader.fill(group, group.host);
        }
        packed.push(group);
      }
    } catch (e) {
      transfer.dispose([]);
      throw e;
    }
    return new WeightStreamer(packed, transfer, slots, opts.dtype, opts.device, mode === 'source' ? reader : null, format);
  }

  /** Device slots (each as large as the largest group). */
  get slots(): number {
    return this.#slots.length;
  }
  /** The 8-bit format of the streamed matrices (null: model dtype). */
  get weights8bit(): Weight8Format | null {
    return this.#format;
  }
  /** Host -> device group copies so far (a group still in its slot is not copied again). */
  get loads(): number {
    return this.#loads;
  }
  /** Bytes on the device: the slots, plus the dequantize scratch with 8-bit weights. */
  get deviceBytes(): number {
    const bytes = (t: Tensor | null) => (t ? t.numel * BYTES_PER_ELEMENT[t.dtype] : 0);
    return this.#slots.reduce((s, x) => s + bytes(x.parts.plain) + bytes(x.parts.codes) + bytes(x.parts.scales), 0) + bytes(this.#scratch);
  }
  /** Bytes of host memory held: the packed copies of all groups, or the slots' staging buffers ('source' mode). */
  get hostBytes(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.host?.plain.buffer.byteLength ?? 0;
    for (const s of this.#slots) n += s.staging?.plain.buffer.byteLength ?? 0;
    return n;
  }
  has(name: string): boolean {
    return this.#groups.has(name);
  }

  #slotOf(index: number): Slot {
    return this.#slots[index % this.#slots.length];
  }
  /** The copies of a group's parts from `host` into the slot (empty parts skipped). */
  #copies(slot: Slot, group: HostGroup, host: HostParts): Copy[] {
    const out: Copy[] = [];
    const add = (dst: Tensor | null, src: HostArray, n: number) => {
      if (dst && n > 0) out.push([slice(dst, 0, 0, n), src.length === n ? src : (src.subarray(0, n) as HostArray)]);
    };
    add(slot.parts.plain, host.plain, group.sizes.plain);
    add(slot.parts.codes, host.codes, group.sizes.codes);
    add(slot.parts.scales, host.scales, group.sizes.scales);
    return out;
  }
  #queue(index: number): void {
    const group = this.#groups.get(this.order[index])!;
    const slot = this.#slotOf(index);
    if (slot.tag === group.name || slot.busy) return;
    for (const v of slot.views.values()) v.dispose();
    slot.views.clear();
    slot.tag = group.name;
    let host = group.host;
    if (!host) {
      // read the group again into the slot's staging buffers, once its previous copy has left them
      this.#transfer.copied(slot);
      this.#reader!.fill(group, slot.staging!);
      host = slot.staging!;
    }
    const copies = this.#copies(slot, group, host);
    this.#transfer.load(slot, copies);
    for (const [dst] of copies) dst.dispose();
    this.#loads++;
    for (const p of group.params) {
      const flat = p.q8 ? slice(this.#scratch!, 0, p.q8.scratch, p.q8.scratch + p.numel) : slice(slot.parts.plain, 0, p.offset, p.offset + p.numel);
      slot.views.set(p.key, keep(reshape(flat, p.shape)));
      flat.dispose();
    }
  }
  /** 8-bit mode: dequantize the group's matrices from its slot into the scratch (on the compute stream). */
  #dequantize(group: HostGroup, slot: Slot): void {
    if (!this.#format || this.#scratchTag === group.name) return;
    this.#scratchTag = null;
    for (const p of group.params) {
      if (!p.q8) continue;
      const [rows, cols] = p.shape;
      const flat = slice(slot.parts.codes!, 0, p.q8.codes, p.q8.codes + p.numel);
      const codes = reshape(flat, [rows, cols]);
      const scales = slice(slot.parts.scales!, 0, p.q8.scales, p.q8.scales + rows);
      try {
        dequantize8Into(slot.views.get(p.key)!, codes, scales, this.#format);
      } finally {
        flat.dispose();
        codes.dispose();
        scales.dispose();
      }
    }
    this.#scratchTag = group.name;
  }

  /**
   * The group's parameters on the device (keyed by their full keys; the views stay owned by the streamer),
   * waiting for its copy if needed; queues copies of the next groups. With 8-bit weights the matrices are
   * dequantized into the one scratch, so the previous group must have been released (its kernels queued) first.
   */
  acquire(name: string): ReadonlyMap<string, Tensor> {
    const index = this.order.indexOf(name);
    if (index < 0) throw new WeightStreamError(`no streamed group named ${name}`);
    const slot = this.#slotOf(index);
    if (slot.busy && slot.tag !== name) throw new WeightStreamError(`group ${name} needs the slot ${slot.tag} still holds: release groups in order`);
    if (this.#format) {
      const other = this.#slots.find((s) => s.busy && s.tag !== name);
      if (other) throw new WeightStreamError(`8-bit streaming dequantizes into one scratch: release ${other.tag} before acquiring ${name}`);
    }
    this.#queue(index);
    slot.busy = true;
    // prefetch into the other slots (each waits on the device for the compute that last used it)
    for (let k = index + 1; k < Math.min(index + this.#slots.length, this.order.length); k++) this.#queue(k);
    this.#transfer.wait(slot);
    this.#dequantize(this.#groups.get(name)!, slot);
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
      s.parts.plain.dispose();
      s.parts.codes?.dispose();
      s.parts.scales?.dispose();
    }
    this.#slots.length = 0;
    this.#scratch?.dispose();
    this.#scratch = null;
    this.#scratchTag = null;
  }
}
