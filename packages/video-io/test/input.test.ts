import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import {
  BUCKET_OPTIONS,
  findNearestBucket,
  ImageReadError,
  imageToTensor,
  jpegDecoder,
  jpegExifOrientation,
  prepareInputImage,
  pyRound,
  readImage,
  resizeAndCenterCrop,
  resizeImage,
  type ResampleFilter,
  type RgbImage,
} from '@framepack/video-io';
import { defaultGoldenDir, runGoldenDir } from '../../../tooling/golden/src/index.js'; // by path: a dependency would make a cycle (the runner depends on us)

const here = dirname(fileURLToPath(import.meta.url));
const fixture = JSON.parse(readFileSync(join(here, 'fixtures/pillow-resize.json'), 'utf8')) as {
  sources: { width: number; height: number; data: string }[];
  resize: { src: number; filter: ResampleFilter; width: number; height: number; out: string }[];
  resizeAndCenterCrop: { src: number; width: number; height: number; out: string }[];
};
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const sources: RgbImage[] = fixture.sources.map((s) => ({ width: s.width, height: s.height, data: b64(s.data) }));

function pngBytes(w: number, h: number, rgba: Uint8Array, colorType: 0 | 2 | 4 | 6 = 6): Buffer {
  const png = new PNG({ width: w, height: h });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType });
}

describe('readImage', () => {
  it('decodes RGBA PNG and drops alpha (PIL convert("RGB"))', () => {
    const rgba = new Uint8Array([10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 1, 2, 3, 4]);
    const img = readImage(pngBytes(2, 2, rgba));
    expect([img.width, img.height]).toEqual([2, 2]);
    expect([...img.data]).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3]);
  });
  it('expands grayscale PNG to RGB', () => {
    const rgba = new Uint8Array([7, 7, 7, 255, 200, 200, 200, 255]);
    const img = readImage(pngBytes(2, 1, rgba, 0));
    expect([...img.data]).toEqual([7, 7, 7, 200, 200, 200]);
  });
  it('reads a file path and JPEG bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vio-in-'));
    const w = 16, h = 8;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([128, 64, 32, 255], i * 4); // flat colour: JPEG keeps it within a few levels
    const p = join(dir, 'x.jpg');
    writeFileSync(p, jpeg.encode({ width: w, height: h, data: rgba }, 100).data);
    const img = readImage(p);
    expect([img.width, img.height, img.data.length]).toEqual([16, 8, 16 * 8 * 3]);
    for (let i = 0; i < w * h; i++) {
      expect(Math.abs(img.data[i * 3] - 128)).toBeLessThanOrEqual(2);
      expect(Math.abs(img.data[i * 3 + 1] - 64)).toBeLessThanOrEqual(2);
      expect(Math.abs(img.data[i * 3 + 2] - 32)).toBeLessThanOrEqual(2);
    }
  });
  const jpegs = JSON.parse(readFileSync(join(here, 'fixtures/pillow-jpeg.json'), 'utf8')).cases as Record<string, { jpeg: string; pil: string; width: number; height: number }>;
  for (const [name, c] of Object.entries(jpegs))
    it(`JPEG ${name} decodes to Pillow's convert('RGB') pixels${name.startsWith('cmyk') ? ' within 1 level' : ' exactly'}`, () => {
      const img = readImage(b64(c.jpeg));
      expect([img.width, img.height]).toEqual([c.width, c.height]);
      const ref = b64(c.pil);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - ref[i]));
      expect(worst).toBeLessThanOrEqual(name.startsWith('cmyk') ? 1 : 0); // CMYK goes through jpeg-js
    });
  it('uses libjpeg-turbo here', () => expect(jpegDecoder()).toBe('libjpeg-turbo'));
  const exif = JSON.parse(readFileSync(join(here, 'fixtures/pillow-exif.json'), 'utf8')).cases as Record<string, { jpeg: string; pil: string; width: number; height: number }>;
  for (const [o, c] of Object.entries(exif))
    it(`EXIF orientation ${o} is applied like ImageOps.exif_transpose`, () => {
      const bytes = b64(c.jpeg);
      expect(jpegExifOrientation(bytes)).toBe(Number(o));
      const img = readImage(bytes);
      expect([img.width, img.height]).toEqual([c.width, c.height]);
      expect(Buffer.from(img.data).equals(Buffer.from(b64(c.pil)))).toBe(true);
      expect([readImage(bytes, { exifTranspose: false }).width]).toEqual([5]);
    });
  it('keeps decoding after a corrupt JPEG', () => {
    const c = jpegs.rgb_q90_420;
    const bytes = b64(c.jpeg);
    const broken = bytes.slice(0, 200);
    broken.fill(0xff, 20, 200);
    expect(() => readImage(broken)).toThrow(ImageReadError);
    expect(Buffer.from(readImage(bytes).data).equals(Buffer.from(b64(c.pil)))).toBe(true);
  });
  it('fails with ImageReadError on missing, empty, unsupported and corrupt input', () => {
    expect(() => readImage('/nonexistent/x.png')).toThrow(ImageReadError);
    expect(() => readImage(new Uint8Array(0))).toThrow(/empty/);
    expect(() => readImage(new TextEncoder().encode('GIF89a......'))).toThrow(/GIF.*PNG or JPEG/);
    expect(() => readImage(new TextEncoder().encode('hello world'))).toThrow(/unsupported image format/);
    const good = pngBytes(4, 4, new Uint8Array(64).fill(9));
    expect(() => readImage(good.subarray(0, 40))).toThrow(/corrupt or unsupported PNG/);
    expect(() => readImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0, 1, 2, 3]))).toThrow(/corrupt or unsupported JPEG/);
  });
});

describe('resizeImage (Pillow arithmetic)', () => {
  for (const c of fixture.resize)
    it(`${c.filter} ${sources[c.src].width}x${sources[c.src].height} -> ${c.width}x${c.height} equals Pillow exactly`, () => {
      const out = resizeImage(sources[c.src], c.width, c.height, c.filter);
      expect([out.width, out.height]).toEqual([c.width, c.height]);
      expect(Buffer.from(out.data).equals(Buffer.from(b64(c.out)))).toBe(true);
    });
  it('keeps a flat image flat under every filter and copies at the same size', () => {
    const flat: RgbImage = { width: 9, height: 7, data: new Uint8Array(9 * 7 * 3).fill(77) };
    for (const f of ['nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const) {
      for (const [w, h] of [[4, 3], [20, 15]]) expect(resizeImage(flat, w, h, f).data.every((v) => v === 77)).toBe(true);
    }
    const same = resizeImage(flat, 9, 7);
    expect(same.data).not.toBe(flat.data);
    expect(same.data).toEqual(flat.data);
  });
});

describe('resizeAndCenterCrop', () => {
  for (const c of fixture.resizeAndCenterCrop)
    it(`${sources[c.src].width}x${sources[c.src].height} -> ${c.width}x${c.height} equals FramePack + Pillow exactly`, () => {
      const out = resizeAndCenterCrop(sources[c.src], c.width, c.height);
      expect(Buffer.from(out.data).equals(Buffer.from(b64(c.out)))).toBe(true);
    });
  it('returns the image itself at the target size', () => {
    expect(resizeAndCenterCrop(sources[0], 13, 11)).toBe(sources[0]);
  });
  it('pyRound rounds halves to even like Python', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 7].map(pyRound)).toEqual([0, 2, 2, 4, 2, 3, 7]);
  });
});

describe('buckets and tensors', () => {
  it('findNearestBucket: exact aspect wins, ties go to the earlier bucket, keys snap to the nearest (smaller on ties)', () => {
    expect(findNearestBucket(512, 512, 640)).toEqual([640, 640]);
    expect(findNearestBucket(100, 100, 320)).toEqual([256, 256]); // 320 is between 256 and 384: the smaller key
    expect(findNearestBucket(1000, 10, 640)).toEqual([960, 416]);
    expect(findNearestBucket(10, 1000, 640)).toEqual([416, 960]);
    expect(findNearestBucket(480, 640, 640.9)).toEqual([544, 704]); // truncated to 640
    for (const [k, list] of BUCKET_OPTIONS) for (const [bh, bw] of list) expect(findNearestBucket(bh * 3, bw * 3, k)).toEqual([bh, bw]);
    expect(() => findNearestBucket(0, 10)).toThrow(ImageReadError);
  });
  it('imageToTensor gives (1,3,1,H,W) in [-1,1] channel-first', () => {
    const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([0, 255, 127, 51, 102, 204]) };
    const t = imageToTensor(img);
    expect(t.shape).toEqual([1, 3, 1, 1, 2]);
    const v = t.toFloat32Array();
    const f = (u: number) => Math.fround(u / 127.5) - 1;
    expect([...v]).toEqual([f(0), f(51), f(255), f(102), f(127), f(204)].map((x) => Math.fround(x)));
    t.dispose();
  });
  it('prepareInputImage picks the bucket, crops and converts', () => {
    const rgba = new Uint8Array(300 * 200 * 4);
    for (let i = 0; i < 300 * 200; i++) rgba.set([i % 256, (i >> 3) % 256, 99, 255], i * 4);
    const p = prepareInputImage(pngBytes(300, 200, rgba), { resolution: 256 });
    expect(p.bucket).toEqual(findNearestBucket(200, 300, 256));
    expect([p.image.height, p.image.width]).toEqual(p.bucket);
    expect(p.pixels.shape).toEqual([1, 3, 1, p.bucket[0], p.bucket[1]]);
    p.pixels.dispose();
  });
});

describe.skipIf(!existsSync(defaultGoldenDir()))('golden: buckets', () => {
  it('every buckets case passes', async () => {
    const results = await runGoldenDir(defaultGoldenDir(), { only: ['buckets'] });
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect(r.status, `${r.case}: ${r.error ?? r.note ?? ''}`).toBe('pass');
  });
});
