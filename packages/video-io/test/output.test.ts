import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as T from '@framepack/tensor-core';
import { describe, expect, it } from 'vitest';
import { FfmpegError, findFfmpeg, pixelsToFrames, probeVideo, writeMp4, writePngFrames } from '@framepack/video-io';

const hasFfmpeg = (() => {
  try {
    findFfmpeg('ffmpeg');
    findFfmpeg('ffprobe');
    return true;
  } catch {
    return false;
  }
})();

function gradient(T_: number, H: number, W: number): T.Tensor {
  const v = new Float32Array(3 * T_ * H * W);
  for (let i = 0; i < v.length; i++) v[i] = ((i % 97) / 48) - 1;
  return T.tensor(v, [1, 3, T_, H, W]);
}

describe('pixels to frames', () => {
  it('clamps, scales by 127.5 and truncates like FramePack', () => {
    const px = T.tensor([-2, -1, 0, 0.999, 1, 5], [1, 3, 1, 1, 2]);
    const f = pixelsToFrames(px);
    expect([...f.frame(0)]).toEqual([0, 127, 255, 0, 254, 255]);
  });
  it('writes PNG frames that decode back to the same bytes', () => {
    const d = mkdtempSync(join(tmpdir(), 'png-'));
    const frames = pixelsToFrames(gradient(2, 4, 6));
    const paths = writePngFrames(d, frames);
    expect(readdirSync(d)).toEqual(['frame_00000.png', 'frame_00001.png']);
    const img = PNG.sync.read(readFileSync(paths[1]));
    const rgb = new Uint8Array(4 * 6 * 3);
    for (let i = 0; i < 24; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = img.data[i * 4 + c];
    expect([...rgb]).toEqual([...frames.frame(1)]);
  });
});

describe('ffmpeg', () => {
  it('explains how to install ffmpeg when it is missing', () => {
    expect(() => findFfmpeg('ffmpeg', { PATH: '/nonexistent' })).toThrow(/apt-get install ffmpeg/);
    expect(() => findFfmpeg('ffmpeg', { FFMPEG_PATH: '/nope/ffmpeg' })).toThrow(FfmpegError);
  });
  it.skipIf(!hasFfmpeg)('encodes an H.264 MP4 with the expected frame count, atomically', async () => {
    const d = mkdtempSync(join(tmpdir(), 'mp4-'));
    const out = join(d, 'clip.mp4');
    await writeMp4(out, pixelsToFrames(gradient(13, 16, 24)), { crf: 20, preset: 'ultrafast' });
    const info = probeVideo(out);
    expect(info).toMatchObject({ codec: 'h264', width: 24, height: 16, frames: 13, fps: 30, pixelFormat: 'yuv420p' });
    expect(readdirSync(d)).toEqual(['clip.mp4']);
    await expect(writeMp4(join(d, 'odd.mp4'), pixelsToFrames(gradient(1, 3, 4)))).rejects.toThrow(/even sizes/);
    expect(existsSync(join(d, 'odd.mp4'))).toBe(false);
  });
});
