export { FfmpegError, findFfmpeg, writeMp4, probeVideo, type Mp4Options, type FrameSource, type VideoInfo } from './ffmpeg.js';
export { pixelsToFrames, encodePng, writePngFrames } from './frames.js';
