import * as T from '@framepack/tensor-core';
import type { DeviceType, DType, Tensor } from '@framepack/tensor-core';
import { directReaderAs, type TensorSource } from '@framepack/safetensors';
import type { DiTConfig } from './config.js';
import { DiTInputError } from './errors.js';
import { ParamScope } from './weights.js';

/**
 * Low-VRAM block streaming: the dual/single blocks' weights stay in host memory (pinned on CUDA, one packed
 * buffer per block) and a ring of `slots` device buffers holds the blocks in use, copied ahead of compute on a
 * copy stream. The mechanism is tensor-core's `WeightStreamer` (shared with the text/vision encoders); this
 * file maps it onto the DiT's block names. With slots >= the number of blocks every block stays on the device
 * after the first forward.
 */
export interface BlockStreamOptions {
  /** Blocks on the device at once (default 2: one computing, one arriving). */
  slots?: number;
  /**
   * The first `residentBlocks` blocks (execution order: dual then single) stay on the device like the rest of
   * the model and only the others stream: each forward copies fewer bytes when the budget has room (default 0).
   */
  residentBlocks?: number;
  /**
   * Store the streamed blocks' matrices in 8 bits with per-row f32 scales ('int8' weight-only or 'fp8' E4M3):
   * each forward copies about half the bytes; the block's matrices are dequantized to the model dtype on the
   * device after the copy (tensor-core `WeightStreamer`). Resident blocks and every bias/norm stay in the model
   * dtype. Default: none.
   */
  weights8bit?: T.Weight8Format;
}

/** The blocks `opts` streams (all but the first `residentBlocks`). */
export function streamedBlockNames(c: DiTConfig, opts: BlockStreamOptions): string[] {
  const r = opts.residentBlocks ?? 0;
  const names = blockNames(c);
  if (!Number.isInteger(r) || r < 0 || r > names.length) throw new DiTInputError(`streamBlocks.residentBlocks must be an integer in 0..${names.length}, got ${opts.residentBlocks}`);
  return names.slice(r);
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
  private constructor(readonly stream: T.WeightStreamer) {}

  /**
   * Read every block's parameters from `source` (a safetensors source or a record of tensors, already
   * validated against the config) into host buffers of `dtype`.
   */
  static fromSource(config: DiTConfig, source: TensorSource | Record<string, Tensor>, shapes: ReadonlyMap<string, number[]>, opts: { dtype: DType; device: DeviceType } & BlockStreamOptions): BlockStreamer {
    const slots = opts.slots ?? 2;
    if (!Number.isInteger(slots) || slots < 1) throw new DiTInputError(`block streaming needs slots >= 1 (2 or more to overlap copies), got ${opts.slots}`);
    const read = (key: string): Tensor => {
      if (typeof (source as TensorSource).tensor === 'function') return (source as TensorSource).tensor(key, { dtype: opts.dtype, device: 'cpu' });
      const t = (source as Record<string, Tensor>)[key];
      return T.reshape(t, t.shape); // a view: the streamer disposes what it reads, the caller keeps its tensor
    };
    const groups = streamedBlockNames(config, opts).map((name) => ({
      name,
      params: [...shapes.keys()].filter((k) => k.startsWith(`${name}.`)).map((key) => ({ key, shape: shapes.get(key)! })),
    }));
    if (opts.weights8bit !== undefined && !(T.WEIGHT8_FORMATS as readonly string[]).includes(opts.weights8bit))
      throw new DiTInputError(`streamBlocks.weights8bit must be 'int8' or 'fp8', got ${String(opts.weights8bit)}`);
    // a checkpoint storing the model dtype is read straight into the pinned buffers (no intermediate tensor)
    const readDirect = typeof (source as TensorSource).tensor === 'function' ? directReaderAs(source as TensorSource, opts.dtype) : undefined;
    return new BlockStreamer(T.WeightStreamer.create(groups, read, { dtype: opts.dtype, device: opts.device, slots, weights8bit: opts.weights8bit, readDirect }));
  }

  /** Whether the block is streamed (else it is resident with the rest of the model). */
  has(name: string): boolean {
    return this.stream.has(name);
  }
  /** Streamed block names in execution order. */
  get order(): readonly string[] {
    return this.stream.order;
  }
  /** The 8-bit format of the streamed matrices (null: the model dtype). */
  get weights8bit(): T.Weight8Format | null {
    return this.stream.weights8bit;
  }
  /** Device slots (each as large as the largest block). */
  get slots(): number {
    return this.stream.slots;
  }
  /** Host -> device block copies so far (a resident block is not copied again). */
  get loads(): number {
    return this.stream.loads;
  }
  /** Bytes on the device: the slots (and the dequantize scratch with 8-bit weights). */
  get deviceBytes(): number {
    return this.stream.deviceBytes;
  }
  /** Bytes of the host copies of all blocks. */
  get hostBytes(): number {
    return this.stream.hostBytes;
  }

  /** The block's parameters on the device, waiting for its copy if needed; queues copies of the next blocks. */
  acquire(name: string): ParamScope {
    if (!this.stream.has(name)) throw new DiTInputError(`no streamed block named ${name}`);
    return new ParamScope(this.stream.acquire(name)).at(name);
  }

  /**
   * The compute that reads the block has been queued: its slot may be refilled once that compute has run.
   * With `prefetch` the slot starts receiving the block that uses it next (after the last block: the first
   * blocks of the next forward); a forward that stops early (a skipped step) passes false.
   */
  release(name: string, prefetch = true): void {
    this.stream.release(name, prefetch);
  }

  /** Release every acquired block (after a forward that threw half-way), without prefetching. */
  releaseAll(): void {
    this.stream.releaseAll();
  }

  dispose(): void {
    this.stream.dispose();
  }
}
