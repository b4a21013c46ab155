// The addon's threaded host quantizer (native/src/quantize_host.cpp, what WeightStreamer uses on CUDA machines)
// against the TypeScript definition (quantize8Host / quantize8HostBf16): the same scales and codes, byte for byte,
// on inputs that reach every rounding path (all bf16 bit patterns, e4m3 and int8 ties, subnormals, rows whose
// quotient lands above 448, zero rows) and on 1 and several threads; the same first bad row on non-finite values.
// Compiled with the host compiler, so it runs in CI without a GPU.
import * as T from '@framepack/tensor-core';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);

let seed = 11;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
const randn = () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
const bf16BitsOf = (v: Float32Array) => Uint16Array.from(new Uint32Array(v.buffer), (b) => b >>> 16); // truncation: any bf16 will do

describe.skipIf(!cxx)('native host quantizer (host compiler) = the TypeScript definition', () => {
  let dir = '';
  let exe = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fp-quant-'));
    exe = join(dir, 'quantize_host_test');
    const build = spawnSync(cxx!, ['-std=c++17', '-O3', '-Wall', '-Werror', '-pthread', '-o', exe, join(here, 'native/quantize_host_test.cpp'), join(here, '../native/src/quantize_host.cpp')], { encoding: 'utf8' });
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function native(src: Float32Array | Uint16Array, rows: number, cols: number, format: T.Weight8Format, threads: number) {
    const head = Buffer.alloc(32);
    head.writeInt32LE(src instanceof Float32Array ? 0 : 1, 0);
    head.writeInt32LE(format === 'fp8' ? 1 : 0, 4);
    head.writeInt32LE(threads, 8);
    head.writeBigInt64LE(BigInt(rows), 16);
    head.writeBigInt64LE(BigInt(cols), 24);
    writeFileSync(join(dir, 'in.bin'), Buffer.concat([head, Buffer.from(src.buffer, src.byteOffset, src.byteLength)]));
    const run = spawnSync(exe, [join(dir, 'in.bin'), join(dir, 'out.bin')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = readFileSync(join(dir, 'out.bin'));
    return {
      bad: Number(out.readBigInt64LE(0)),
      scales: new Uint8Array(out.buffer, out.byteOffset + 8, rows * 4).slice(),
      codes: new Uint8Array(out.buffer, out.byteOffset + 8 + rows * 4, rows * cols).slice(),
    };
  }
  function reference(src: Float32Array | Uint16Array, rows: number, cols: number, format: T.Weight8Format) {
    const codes = new Uint8Array(rows * cols), scales = new Float32Array(rows);
    if (src instanceof Float32Array) T.quantize8Host(src, rows, cols, format, codes, scales);
    else T.quantize8HostBf16(src, rows, cols, format, codes, scales);
    return { scales: new Uint8Array(scales.buffer), codes };
  }
  function expectSame(src: Float32Array | Uint16Array, rows: number, cols: number) {
    for (const format of T.WEIGHT8_FORMATS) {
      const want = reference(src, rows, cols, format);
      for (const threads of [1, 5]) {
        const got = native(src, rows, cols, format, threads);
        expect(got.bad, `${format}, ${threads} threads`).toBe(-1);
        expect(Buffer.compare(got.scales, want.scales), `${format} scales, ${threads} threads`).toBe(0);
        const diff = got.codes.findIndex((c, i) => c !== want.codes[i]);
        expect(diff, `${format} first differing code (row ${Math.floor(diff / cols)}), ${threads} threads`).toBe(-1);
      }
    }
  }

  it('every bf16 bit pattern (non-finite ones as 0), shuffled over rows of mixed magnitude', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, b) => ((b & 0x7f80) === 0x7f80 ? 0 : b));
    for (let i = bits.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [bits[i], bits[j]] = [bits[j], bits[i]];
    }
    expectSame(bits, 256, 256);
    // the same patterns in rows of one exponent each (tiny and subnormal rows get tiny or subnormal scales)
    expectSame(Uint16Array.from({ length: 65536 }, (_, b) => ((b & 0x7f80) === 0x7f80 ? 0 : b)), 256, 256);
  });

  it('ties and boundaries: e4m3 midpoints at scale 1, int8 half-integers at scale 1, zero rows', () => {
    const cols = 512;
    const fp8Row = new Float32Array(cols); // amax 448: the scale is exactly 1 and the quotient the value itself
    fp8Row[0] = 448;
    let k = 1;
    for (let c = 0; c < 0x7e && k + 4 <= cols; c++) {
      const lo = T.fp8e4m3Decode(c), hi = T.fp8e4m3Decode(c + 1), mid = (lo + hi) / 2;
      fp8Row.set([mid, -mid, mid + (hi - lo) / 64, lo], k);
      k += 4;
    }
    const int8Row = Float32Array.from({ length: cols }, (_, i) => (i === 0 ? 127 : ((i % 253) - 126) + (i % 2 ? 0.5 : 0.25)));
    const zero = new Float32Array(cols);
    const values = new Float32Array([...fp8Row, ...int8Row, ...zero, ...fp8Row.map((v) => v * 1e-3)]);
    expectSame(values, 4, cols);
  });

  it('random rows over 20 decades of scale, f32 and bf16, 1 and 5 threads', () => {
    const rows = 37, cols = 300;
    const v = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const scale = 10 ** (rand() * 20 - 12);
      for (let i = 0; i < cols; i++) v[r * cols + i] = randn() * scale;
    }
    expectSame(v, rows, cols);
    expectSame(bf16BitsOf(v), rows, cols);
  });

  it('reports the first row with a non-finite value, like the TypeScript definition', () => {
    const rows = 12, cols = 64;
    const v = Float32Array.from({ length: rows * cols }, () => randn());
    v[9 * cols + 3] = Infinity;
    v[3 * cols + 60] = NaN;
    for (const src of [v, bf16BitsOf(v)]) {
      for (const threads of [1, 4]) expect(native(src, rows, cols, 'int8', threads).bad).toBe(3);
      expect(() => reference(src, rows, cols, 'int8')).toThrow(/row 3 /);
    }
  });
});
