import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Tensor } from '@framepack/tensor-core';
import { FILE_DTYPE, ST_DTYPE_BYTES } from './dtypes.js';
import { SafetensorsError } from './errors.js';

/**
 * Write tensors to a .safetensors file (tensor by tensor, to a temporary file renamed into place, so a failure
 * never leaves a half-written file under the final name).
 */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const dt = FILE_DTYPE[t.dtype];
    if (!dt) throw new SafetensorsError(`dtype ${t.dtype} cannot be stored`, 'E_DTYPE', path, name);
    const bytes = t.numel * ST_DTYPE_BYTES[dt];
    header[name] = { dtype: dt, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // data starts 8-byte aligned
  const hb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  const tmp = `${path}.partial-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, hb);
    for (const name of names) {
      const h = tensors[name].toHost();
      writeSync(fd, new Uint8Array(h.buffer, h.byteOffset, h.byteLength));
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {}
    rmSync(tmp, { force: true });
    throw e;
  }
}
