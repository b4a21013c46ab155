import type { RgbImage } from './image.js';

/**
 * The EXIF Orientation tag (0x0112) of a JPEG (APP1 "Exif" segment, IFD0), 1 when absent or unreadable.
 * Only the first IFD is read: that is where cameras and PIL's getexif() put it.
 */
export function jpegExifOrientation(b: Uint8Array): number {
  let p = 2; // after SOI
  while (p + 4 <= b.length && b[p] === 0xff) {
    const marker = b[p + 1];
    if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image: no more headers
    const len = (b[p + 2] << 8) | b[p + 3];
    if (len < 2) break;
    if (marker === 0xe1 && len >= 16 && String.fromCharCode(...b.subarray(p + 4, p + 10)) === 'Exif\0\0') return tiffOrientation(b.subarray(p + 10, p + 2 + len));
    p += 2 + len;
  }
  return 1;
}

function tiffOrientation(t: Uint8Array): number {
  if (t.length < 8) return 1;
  const le = t[0] === 0x49 && t[1] === 0x49; // "II" little-endian, "MM" big-endian
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return 1;
  const u16 = (o: number) => (le ? t[o] | (t[o + 1] << 8) : (t[o] << 8) | t[o + 1]);
  const u32 = (o: number) => (le ? (t[o] | (t[o + 1] << 8) | (t[o + 2] << 16)) + t[o + 3] * 2 ** 24 : t[o] * 2 ** 24 + ((t[o + 1] << 16) | (t[o + 2] << 8) | t[o + 3]));
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return 1;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > t.length) break;
    if (u16(e) === 0x0112) {
      const v = u16(e + 8); // SHORT, left-justified in the value field
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/**
 * Turn an image stored with EXIF orientation `o` upright, as PIL's ImageOps.exif_transpose does
 * (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise).
 */
export function applyOrientation(img: RgbImage, o: number): RgbImage {
  if (o <= 1 || o > 8) return img;
  const { width: W, height: H, data } = img;
  const swap = o >= 5;
  const ow = swap ? H : W, oh = swap ? W : H;
  const out = new Uint8Array(data.length);
  for (let Y = 0; Y < oh; Y++)
    for (let X = 0; X < ow; X++) {
      // source pixel (x, y) of output pixel (X, Y)
      let x: number, y: number;
      switch (o) {
        case 2: x = W - 1 - X; y = Y; break;
        case 3: x = W - 1 - X; y = H - 1 - Y; break;
        case 4: x = X; y = H - 1 - Y; break;
        case 5: x = Y; y = X; break;
        case 6: x = Y; y = H - 1 - X; break;
        case 7: x = W - 1 - Y; y = H - 1 - X; break;
        default: x = W - 1 - Y; y = X; break; // 8
      }
      const s = (y * W + x) * 3, d = (Y * ow + X) * 3;
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
    }
  return { width: ow, height: oh, data: out };
}
