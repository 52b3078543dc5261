/** Video in and out: export to MP4 / WebM / GIF / WebP / PNG frames, read videos and images. */

export type { Video, Uint8Video, FloatVideo, VideoProgress } from "./types.ts";
export { assertVideo } from "./types.ts";
export { videoToFloat, videoToUint8, resizeVideo, RESIZE_MODES, type ResizeMode, type ResizeOptions } from "./convert.ts";
export {
  exportVideo,
  exportToVideo,
  exportToGif,
  exportToWebp,
  exportFrames,
  outputTarget,
  SUPPORTED_OUTPUTS,
  VIDEO_CODECS,
  type VideoCodec,
  type ExportOptions,
  type ExportVideoFileOptions,
  type ExportAnimationOptions,
  type ExportWebpOptions,
  type ExportFramesOptions,
  type ExportResult,
  type OutputTarget,
} from "./export.ts";
export { readVideo, naturalSort, IMAGE_EXTENSIONS, DEFAULT_MAX_PIXELS, DEFAULT_MAX_BYTES, type ReadVideoOptions, type DecodedVideo } from "./read.ts";
export { findFfmpeg, type FfmpegLocation } from "./ffmpeg.ts";
export { assertWritable } from "./atomic.ts";
