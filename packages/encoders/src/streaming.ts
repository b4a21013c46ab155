/**
 * Low-VRAM layer streaming for the encoders: the decoder/encoder layers live in host memory (pinned on CUDA) and
 * pass through a ring of device slots, copied ahead of compute on a copy stream: tensor-core's `WeightStreamer`,
 * the same mechanism as the DiT's block streaming. Only the layers a forward needs are streamed (the LLaMA
 * encoder used for hidden_states[-3] never loads its last 2 layers nor the final norm).
 */
import * as T from '@framepack/tensor-core';
import { EncoderInputError } from './errors.js';

export interface StreamLayersOptions {
  /** Layers on the device at once (default 2: one computing, one arriving). */
  slots?: number;
  /**
   * 'packed' (default): every layer is read once into a host buffer (pinned on CUDA) and copied from there.
   * 'source': each pass reads the layers again from the checkpoint (positioned reads, the page cache) into the
   * slots' staging buffers, so host memory holds only the slots (for a per-job encoder on a machine short of RAM;
   * `load` then keeps the checkpoint open until `dispose`).
   */
  hostCopy?: 'packed' | 'source';
  /**
   * Store the streamed layers' matrices in 8 bits with per-row f32 scales ('int8' weight-only or 'fp8' E4M3; see
   * tensor-core's `WeightStreamer`): half the bytes per pass, dequantized on the device after each copy. Norms and
   * biases stay in the model dtype. Default: none.
   */
  weights8bit?: T.Weight8Format;
}

/**
 * The streamed groups: every key matching `layerKey` (its first capture = the layer number) grouped by layer,
 * in layer order, named `<groupPrefix>.<n>`; shapes from `shapes`.
 */
export function layerGroups(keys: readonly string[], shapes: ReadonlyMap<string, readonly number[]>, layerKey: RegExp, groupPrefix: string): T.StreamGroup[] {
  const byLayer = new Map<number, { key: string; shape: readonly number[] }[]>();
  for (const key of keys) {
    const m = layerKey.exec(key);
    if (!m) continue;
    const n = Number(m[1]);
    if (!byLayer.has(n)) byLayer.set(n, []);
    byLayer.get(n)!.push({ key, shape: shapes.get(key)! });
  }
  return [...byLayer.keys()].sort((a, b) => a - b).map((n) => ({ name: `${groupPrefix}.${n}`, params: byLayer.get(n)! }));
}

/** A WeightStreamer over the layer groups, with the slot count checked here (an encoder-level error). */
export function createLayerStream(
  groups: T.StreamGroup[], read: (key: string) => T.Tensor,
  opts: { dtype: T.DType; device: T.DeviceType; readDirect?: T.WeightStreamOptions['readDirect'] } & StreamLayersOptions,
): T.WeightStreamer {
  const slots = opts.slots ?? 2;
  if (!Number.isInteger(slots) || slots < 1) throw new EncoderInputError(`streamLayers.slots must be an integer >= 1 (2 or more to overlap copies with compute), got ${opts.slots}`);
  if (opts.weights8bit !== undefined && !(T.WEIGHT8_FORMATS as readonly string[]).includes(opts.weights8bit))
    throw new EncoderInputError(`streamLayers.weights8bit must be 'int8' or 'fp8', got ${String(opts.weights8bit)}`);
  return T.WeightStreamer.create(groups, read, { dtype: opts.dtype, device: opts.device, slots, hostCopy: opts.hostCopy, weights8bit: opts.weights8bit, readDirect: opts.readDirect });
}
