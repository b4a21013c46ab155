import { spawn, spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** ffmpeg could not be found or failed; the message says how to fix it. */
export class FfmpegError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FfmpegError';
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/** Locate a binary: the env override (FFMPEG_PATH / FFPROBE_PATH), then PATH. */
export function findFfmpeg(tool: 'ffmpeg' | 'ffprobe' = 'ffmpeg', env: NodeJS.ProcessEnv = process.env): string {
  const override = env[tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'];
  if (override) {
    if (!existsSync(override)) throw new FfmpegError(`${tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'}=${override} does not exist`);
    return override;
  }
  const found = onPath(tool, env);
  if (found) return found;
  throw new FfmpegError(
    `${tool} not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg) ` +
      `or set ${tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'} to the binary. PNG-frame output (--format png) works without it.`,
  );
}

export interface Mp4Options {
  fps?: number;
  /** x264 constant rate factor, 0 (lossless) .. 51; FramePack's default is 16. */
  crf?: number;
  preset?: string;
  ffmpegPath?: string;
}

/** RGB24 frames of one size. */
export interface FrameSource {
  width: number;
  height: number;
  count: number;
  frame(i: number): Uint8Array;
}

/**
 * Encode frames as H.264 (yuv420p, +faststart) by piping raw RGB to ffmpeg. Written to `<path>.tmp-<pid>` and
 * renamed into place when ffmpeg succeeds, so `path` is never a half-written file.
 */
export async function writeMp4(path: string, frames: FrameSource, opts: Mp4Options = {}): Promise<void> {
  const { width, height, count } = frames;
  if (count < 1) throw new FfmpegError('no frames to encode');
  if (width % 2 || height % 2) throw new FfmpegError(`H.264 yuv420p needs even sizes, got ${width}x${height}`);
  const crf = opts.crf ?? 16;
  if (!Number.isInteger(crf) || crf < 0 || crf > 51) throw new FfmpegError(`crf must be an integer in 0..51, got ${crf}`);
  const bin = opts.ffmpegPath ?? findFfmpeg('ffmpeg');
  const tmp = `${path}.tmp-${process.pid}.mp4`;
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(opts.fps ?? 30), '-i', 'pipe:0',
    '-c:v', 'libx264', '-crf', String(crf), '-preset', opts.preset ?? 'medium', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', tmp];
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new FfmpegError(`could not run ${bin}: ${e.message}`)));
    child.on('close', (code) => resolve(code ?? -1));
  });
  try {
    for (let i = 0; i < count; i++) {
      const f = frames.frame(i);
      if (f.length !== width * height * 3) throw new FfmpegError(`frame ${i} has ${f.length} bytes, expected ${width * height * 3}`);
      if (!child.stdin.write(f)) {
        await new Promise<void>((resolve, reject) => {
          const onError = (e: Error) => (child.stdin.off('drain', onDrain), reject(e));
          const onDrain = () => (child.stdin.off('error', onError), resolve());
          child.stdin.once('drain', onDrain);
          child.stdin.once('error', onError);
        });
      }
    }
    child.stdin.end();
  } catch (e) {
    child.kill('SIGKILL');
    await exited.catch(() => {});
    rmSync(tmp, { force: true });
    throw e instanceof FfmpegError ? e : new FfmpegError(`ffmpeg stopped reading frames: ${stderr.trim() || (e as Error).message}`);
  }
  const code = await exited;
  if (code !== 0) {
    rmSync(tmp, { force: true });
    throw new FfmpegError(`ffmpeg exited with ${code}: ${stderr.trim()}`);
  }
  renameSync(tmp, path);
}

export interface VideoInfo {
  codec: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  pixelFormat: string;
}
/** Read stream facts of a video with ffprobe (frames counted by decoding). */
export function probeVideo(path: string, ffprobePath = findFfmpeg('ffprobe')): VideoInfo {
  const r = spawnSync(ffprobePath, ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames,r_frame_rate,pix_fmt', '-of', 'json', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new FfmpegError(`ffprobe failed on ${path}: ${r.stderr.trim()}`);
  const s = JSON.parse(r.stdout).streams?.[0];
  if (!s) throw new FfmpegError(`${path} has no video stream`);
  const [num, den] = String(s.r_frame_rate).split('/').map(Number);
  return { codec: s.codec_name, width: s.width, height: s.height, frames: Number(s.nb_read_frames), fps: num / (den || 1), pixelFormat: s.pix_fmt };
}
