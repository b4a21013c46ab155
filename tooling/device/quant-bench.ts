// Device benchmark for 8-bit streamed weights: one 13B dual block's matrices (36 x 3072^2 values in 14 Linear
// weights) dequantized into a bf16 scratch, against the pinned host -> device copies of the same block in 8 bits and
// in bf16. Prints JSON lines (kind "quant-dequant"). Bundle: esbuild --conditions=source (see tooling/device/prepare.sh).
import * as T from '@framepack/tensor-core';

const D = 3072;
const mats: [number, number][] = [[6 * D, D], [6 * D, D], ...Array.from({ length: 8 }, (): [number, number] => [D, D]), [4 * D, D], [4 * D, D], [D, 4 * D], [D, 4 * D]];
const values = mats.reduce((n, [r, c]) => n + r * c, 0);
const rows = mats.reduce((n, [r]) => n + r, 0);
const reps = 20;

function timeMs(stream: T.CudaStream | null, body: () => void): number {
  const a = T.CudaEvent.create(), b = T.CudaEvent.create();
  body(); // warm-up
  a.record(stream);
  for (let i = 0; i < reps; i++) body();
  b.record(stream);
  b.synchronize();
  const ms = a.elapsedMs(b) / reps;
  a.dispose();
  b.dispose();
  return ms;
}

const info = T.cudaDeviceInfo();
const codes = T.zeros([values], { dtype: 'u8', device: 'cuda' });
const scales = T.full([rows], 0.01, { device: 'cuda' });
const scratch = T.zeros([values], { dtype: 'bf16', device: 'cuda' });
const views: [T.Tensor, T.Tensor, T.Tensor][] = [];
let off = 0, roff = 0;
for (const [r, c] of mats) {
  views.push([
    T.reshape(T.slice(scratch, 0, off, off + r * c), [r, c]),
    T.reshape(T.slice(codes, 0, off, off + r * c), [r, c]),
    T.slice(scales, 0, roff, roff + r),
  ]);
  off += r * c;
  roff += r;
}
const stream = T.CudaStream.create();
const pin8 = T.allocPinned(values + rows * 4);
const pin16 = T.allocPinned(values * 2);
const dst8 = T.zeros([values + rows * 4], { dtype: 'u8', device: 'cuda' });
const dst16 = T.zeros([values], { dtype: 'bf16', device: 'cuda' });
const copy8 = timeMs(stream, () => T.copyToDeviceAsync(dst8, new Uint8Array(pin8), stream));
const copy16 = timeMs(stream, () => T.copyToDeviceAsync(dst16, new Uint16Array(pin16), stream));
for (const format of ['int8', 'fp8'] as const) {
  const ms = timeMs(null, () => {
    for (const [y, q, s] of views) T.dequantize8Into(y, q, s, format);
  });
  const bytes = values * 3 + rows * 4; // read codes, write bf16, read scales
  process.stdout.write(
    `${JSON.stringify({
      kind: 'quant-dequant', device: info.name, format, block: 'dual (13B)', values, launches: mats.length,
      dequantMs: Number(ms.toFixed(4)), dequantGBps: Number((bytes / ms / 1e6).toFixed(1)),
      copy8bitMs: Number(copy8.toFixed(3)), copyBf16Ms: Number(copy16.toFixed(3)), copyGBps: Number(((values * 2) / copy16 / 1e6).toFixed(1)),
      dequantOverCopy8: Number((ms / copy8).toFixed(4)),
    })}\n`,
  );
}
stream.dispose();
