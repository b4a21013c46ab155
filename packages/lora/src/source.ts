import * as T from '@framepack/tensor-core';
import type { DType, Tensor } from '@framepack/tensor-core';
import type { ReadOptions, TensorInfo, TensorSource } from '@framepack/safetensors';
import type { LoraStack } from './merge.js';

const FILE_DTYPE: Partial<Record<string, DType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/**
 * A checkpoint view whose targeted weights come back with the LoRAs merged, one tensor at a time as a
 * loader (or a block streamer) reads them: the base is read in f32, the f32 delta added, and the result cast
 * to the requested dtype (default: the file's). Untargeted weights are passed through untouched. Nothing is
 * kept, so "unmerging" a streamed model is reading the plain source again. Closing the view closes `source`.
 */
export function withLoras(source: TensorSource, stack: LoraStack): TensorSource {
  return {
    keys: () => source.keys(),
    has: (name: string) => source.has(name),
    info: (name: string): TensorInfo => source.info(name),
    close: () => source.close(),
    // raw bytes only for the weights no LoRA targets (a merged weight is not the file's bytes)
    ...(source.readInto ? { readInto: (name: string, dst: Uint8Array) => !stack.has(name) && source.readInto!(name, dst) } : {}),
    tensor(name: string, opts: ReadOptions = {}): Tensor {
      if (!stack.has(name)) return source.tensor(name, opts);
      const dtype = opts.dtype ?? FILE_DTYPE[source.info(name).dtype] ?? 'f32';
      const base = source.tensor(name, { dtype: 'f32', device: opts.device });
      try {
        const merged = stack.mergeInto(name, base);
        const out = T.cast(merged, dtype); // a view when the dtype is already right: disposing merged is safe
        merged.dispose();
        return out;
      } finally {
        base.dispose();
      }
    },
  };
}
