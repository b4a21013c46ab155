import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { allocHost, cast, type DeviceType, convertHalfBits, type DType, fromHost, type HostArray, type Tensor } from '@framepack/tensor-core';
import { FILE_DTYPE, NATIVE_DTYPE, ST_DTYPE_BYTES, type StDType, widen } from './dtypes.js';
import { SafetensorsError } from './errors.js';

/** Header JSON larger than this is refused (the reference implementation uses the same 100 MB cap). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: StDType;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}
export interface ReadOptions {
  /** Cast to this dtype after reading (default: the file's dtype, widened where tensor-core lacks it). */
  dtype?: DType;
  device?: DeviceType;
}

/** The read interface shared by a single file and a sharded checkpoint. */
export interface TensorSource {
  keys(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  tensor(name: string, opts?: ReadOptions): Tensor;
  /**
   * Copy the tensor's stored bytes (its file dtype, little-endian) straight into `dst`, which must hold exactly
   * that many bytes: no intermediate buffer (a weight streamer reads into pinned memory this way). Returns false
   * when this source's bytes are not the tensor's values (a view that transforms the key, e.g. merges a LoRA):
   * read it with `tensor` then. Optional: sources without it are always read with `tensor`.
   */
  readInto?(name: string, dst: Uint8Array): boolean;
  close(): void;
}

/**
 * For a weight streamer: a reader that fills `dst` with a tensor's values in `dtype` straight from the file, with no
 * intermediate tensor: the stored bytes when the file holds `dtype`, and between the half types (an F16 text encoder
 * run as bf16, a BF16 SigLIP run as f16) the bytes converted by tensor-core's table (the same bits as a cast).
 * Returns false when it cannot (another dtype pair, or a size that is not dst's: the caller then reads with `tensor`,
 * which also reports the mismatch). Undefined when the source has no raw reads. `prefix` is prepended to the keys.
 */
export function directReaderAs(source: TensorSource, dtype: DType, prefix = ''): ((key: string, dst: Uint8Array) => boolean) | undefined {
  if (!source.readInto) return undefined;
  const want = FILE_DTYPE[dtype];
  let halves = new Uint16Array(0); // stored bytes of the tensor being converted (reused)
  return (key, dst) => {
    const i = source.info(prefix + key);
    const n = i.end - i.begin;
    if (n !== dst.byteLength) return false;
    if (i.dtype === want) return source.readInto!(prefix + key, dst);
    const from = NATIVE_DTYPE[i.dtype];
    if ((from !== 'f16' && from !== 'bf16') || (dtype !== 'f16' && dtype !== 'bf16') || dst.byteOffset % 2 !== 0) return false;
    if (halves.length < n / 2) halves = new Uint16Array(n / 2);
    const src = halves.subarray(0, n / 2);
    if (!source.readInto!(prefix + key, new Uint8Array(src.buffer, 0, n))) return false;
    convertHalfBits(src, from, dtype, new Uint16Array(dst.buffer, dst.byteOffset, n / 2));
    return true;
  };
}

/** One .safetensors file: the header is parsed and validated on open; tensors are read one at a time by positioned reads. */
export class SafetensorsFile implements TensorSource {
  readonly metadata: Record<string, string>;
  readonly #infos = new Map<string, TensorInfo>();
  readonly #dataStart: number;
  #fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.#fd = fd;
    const fail = (msg: string, code: SafetensorsError['code'] = 'E_HEADER', name?: string): never => {
      closeSync(fd);
      this.#fd = null;
      throw new SafetensorsError(msg, code, path, name);
    };
    const size = fstatSync(fd).size;
    if (size < 8) fail(`file is ${size} bytes, too small to hold a safetensors header`, 'E_TRUNCATED');
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES) fail(`header claims ${headerLen} bytes (limit ${MAX_HEADER_BYTES}): not a safetensors file or corrupt`, 'E_HEADER_TOO_LARGE');
    if (8 + headerLen > size) fail(`header claims ${headerLen} bytes but the file has only ${size - 8} after the length`, 'E_TRUNCATED');
    const hb = Buffer.alloc(headerLen);
    readSync(fd, hb, 0, headerLen, 8);
    let header: Record<string, unknown> = {};
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      fail(`header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
    this.#dataStart = 8 + headerLen;
    const dataSize = size - this.#dataStart;
    const meta = header.__metadata__;
    if (meta !== undefined && (typeof meta !== 'object' || meta === null || Object.values(meta).some((v) => typeof v !== 'string'))) fail('__metadata__ must map strings to strings');
    this.metadata = (meta as Record<string, string>) ?? {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const r = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof r !== 'object' || r === null) fail('entry is not an object', 'E_HEADER', name);
      if (typeof r.dtype !== 'string' || !(r.dtype in ST_DTYPE_BYTES)) fail(`unknown dtype ${JSON.stringify(r.dtype)} (known: ${Object.keys(ST_DTYPE_BYTES).join(', ')})`, 'E_DTYPE', name);
      if (!Array.isArray(r.shape) || r.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`invalid shape ${JSON.stringify(r.shape)}`, 'E_HEADER', name);
      const off = r.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || off.some((o) => !Number.isSafeInteger(o) || o < 0) || off[1] < off[0]) fail(`invalid data_offsets ${JSON.stringify(off)}`, 'E_OFFSETS', name);
      const dt = r.dtype as StDType;
      const shape = r.shape as number[];
      const [begin, end] = off as [number, number];
      const expected = shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[dt];
      if (end - begin !== expected) fail(`data_offsets span ${end - begin} bytes but ${dt}[${shape}] needs ${expected}`, 'E_OFFSETS', name);
      if (end > dataSize) fail(`data ends at byte ${end} but the data section has ${dataSize} bytes (file truncated?)`, 'E_TRUNCATED', name);
      this.#infos.set(name, { dtype: dt, shape, begin, end });
    }
    const sorted = [...this.#infos.entries()].sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < sorted.length; i++) {
      const [pn, p] = sorted[i - 1], [cn, c] = sorted[i];
      if (c.begin < p.end && c.end > c.begin && p.end > p.begin) fail(`overlaps '${pn}' (bytes ${c.begin}-${c.end} vs ${p.begin}-${p.end})`, 'E_OFFSETS', cn);
    }
  }

  /** Open and validate a file (reads only the header). */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new SafetensorsError(`cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'E_IO', path);
    }
    return new SafetensorsFile(path, fd);
  }

  keys(): string[] {
    return [...this.#infos.keys()];
  }
  has(name: string): boolean {
    return this.#infos.has(name);
  }
  info(name: string): TensorInfo {
    const i = this.#infos.get(name);
    if (!i) throw new SafetensorsError(`no tensor named '${name}' (${this.#infos.size} tensors in file)`, 'E_MISSING', this.path, name);
    return i;
  }

  /** Raw bytes of one tensor (positioned read; nothing else of the file is loaded). */
  readBytes(name: string): Uint8Array {
    const i = this.info(name);
    const bytes = new Uint8Array(new ArrayBuffer(i.end - i.begin));
    this.readInto(name, bytes);
    return bytes;
  }

  /** Positioned read of the tensor's stored bytes into `dst` (exactly their size). Always true for a file. */
  readInto(name: string, dst: Uint8Array): boolean {
    const i = this.info(name);
    if (this.#fd === null) throw new SafetensorsError('file is closed', 'E_IO', this.path, name);
    const n = i.end - i.begin;
    if (dst.byteLength !== n) throw new SafetensorsError(`readInto: the tensor has ${n} bytes, the destination ${dst.byteLength}`, 'E_IO', this.path, name);
    let done = 0;
    while (done < n) {
      const got = readSync(this.#fd, dst, done, Math.min(n - done, 1 << 30), this.#dataStart + i.begin + done);
      if (got === 0) throw new SafetensorsError(`unexpected end of file after ${done} of ${n} bytes`, 'E_TRUNCATED', this.path, name);
      done += got;
    }
    return true;
  }

  tensor(name: string, opts: ReadOptions = {}): Tensor {
    const i = this.info(name);
    const bytes = this.readBytes(name);
    const native = NATIVE_DTYPE[i.dtype];
    let host: HostArray;
    if (['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL'].includes(i.dtype)) {
      const arr = allocHost(native, 0).constructor as new (b: ArrayBuffer) => HostArray;
      host = new arr(bytes.buffer as ArrayBuffer);
    } else host = widen(i.dtype, bytes);
    // upload first so a cast to bf16 happens on the device, not in host memory
    let t = fromHost(host, i.shape, native, opts.device ?? 'cpu');
    if (opts.dtype && opts.dtype !== native) {
      const c = cast(t, opts.dtype);
      t.dispose();
      t = c;
    }
    return t;
  }

  /** Values of one tensor as f32. */
  readF32(name: string): Float32Array {
    const t = this.tensor(name, { dtype: 'f32' });
    const v = t.toFloat32Array();
    t.dispose();
    return v;
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

export const openSafetensors = (path: string) => SafetensorsFile.open(path);
