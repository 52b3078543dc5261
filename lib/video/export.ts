/**
 * Writing videos: MP4 / WebM through ffmpeg (raw RGB frames streamed to its stdin), animated
 * GIF / WebP through sharp, numbered PNG frames. Every writer is atomic (temp file + rename).
 */

import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import sharp, { type Sharp, type SharpOptions } from "sharp";
import { TorchvidError } from "../errors.ts";
import { expectBoolean, expectInt, expectNumber, expectOneOf, expectString, invalidParameter } from "../validate.ts";
import { assertWritable, tempSibling, throwIfAborted, track, untrack, writeAtomically } from "./atomic.ts";
import { frameAsUint8, videoToUint8 } from "./convert.ts";
import { runFfmpeg, writeChunk } from "./ffmpeg.ts";
import { assertVideo, type Video, type VideoProgress } from "./types.ts";

export type VideoCodec = "h264" | "h265" | "vp9";
export const VIDEO_CODECS: readonly VideoCodec[] = ["h264", "h265", "vp9"];

/** Extensions `exportVideo` understands, for error messages and help text. */
export const SUPPORTED_OUTPUTS = ".mp4, .webm, .gif, .webp, .png (numbered frames, e.g. frames/%04d.png) or a folder (numbered PNG frames)";

export interface CommonExportOptions {
  /** Stops the export; nothing is left at the target path. */
  signal?: AbortSignal;
  /** Called after each frame is handed to the encoder (`phase: "encode"`). */
  onProgress?: (progress: VideoProgress) => void;
}

export interface ExportVideoFileOptions extends CommonExportOptions {
  /** Frames per second. Defaults to `video.fps`, else 8. */
  fps?: number;
  /**
   * Constant rate factor: lower is better and bigger. Defaults to 18 for h264/h265
   * (visually near-lossless) and 31 for vp9. Range 0-51 (h264/h265), 0-63 (vp9).
   */
  crf?: number;
  /**
   * Encoder: `"h264"` (libx264, the default for .mp4, plays everywhere), `"h265"` (libx265, .mp4,
   * tagged hvc1 for Apple players) or `"vp9"` (libvpx-vp9, the default and only choice for .webm).
   */
  codec?: VideoCodec;
}

export interface ExportAnimationOptions extends CommonExportOptions {
  /** Frames per second; each frame is shown round(1000 / fps) ms (GIF rounds to 10 ms). Defaults to `video.fps`, else 8. */
  fps?: number;
  /** Number of times to play; 0 (the default) loops forever. */
  loop?: number;
}

export interface ExportWebpOptions extends ExportAnimationOptions {
  /** Lossy quality 1-100. Defaults to 90. */
  quality?: number;
  /** Lossless WebP. Defaults to false. */
  lossless?: boolean;
}

export interface ExportFramesOptions extends CommonExportOptions {
  /** File name pattern, printf-style `%d` / `%04d` for the frame index (from 0). Defaults to `"frame_%04d.png"`. */
  pattern?: string;
}

export type ExportOptions = ExportVideoFileOptions & ExportWebpOptions & ExportFramesOptions;

/** What was written. */
export interface ExportResult {
  /** The file, or for PNG frames the folder. */
  path: string;
  format: "mp4" | "webm" | "gif" | "webp" | "png";
  numFrames: number;
  /** Size of the written frames (an odd H.264 size is padded by one pixel, see exportToVideo). */
  width: number;
  height: number;
  fps: number;
  /** For PNG frames, every file written, in order. */
  files?: string[];
}

function resolveFps(fps: number | undefined, video: Video): number {
  return expectNumber(fps ?? video.fps ?? 8, "fps", { min: 0.01, max: 1000 });
}

/**
 * The frame in the size the encoder gets: odd sizes are padded to even (yuv420p needs it) by
 * repeating the last column / row, so no black line appears and cropping it back is exact.
 */
function paddedFrame(frame: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  if (width === outWidth && height === outHeight) return frame;
  const out = new Uint8Array(outWidth * outHeight * 3);
  const rowIn = width * 3;
  const rowOut = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const src = Math.min(y, height - 1) * rowIn;
    out.set(frame.subarray(src, src + rowIn), y * rowOut);
    for (let x = width; x < outWidth; x++) out.copyWithin(y * rowOut + x * 3, y * rowOut + (width - 1) * 3, y * rowOut + width * 3);
  }
  return out;
}

function containerOf(path: string): "mp4" | "webm" {
  const ext = extname(path).toLowerCase();
  if (ext === ".mp4" || ext === ".m4v") return "mp4";
  if (ext === ".webm") return "webm";
  throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path} with exportToVideo: unsupported extension "${ext}"; use .mp4 or .webm (or exportVideo for ${SUPPORTED_OUTPUTS})`);
}

/**
 * Writes `video` as an MP4 (H.264 by default; yuv420p, `+faststart` so it plays while
 * downloading) or WebM (VP9), by extension. Frames are streamed to ffmpeg's stdin as raw
 * rgb24, never written as images. H.264 / H.265 need an even width and height: an odd size is
 * padded by one pixel that repeats the last column / row (the result says the size written).
 */
export async function exportToVideo(video: Video, path: string, options: ExportVideoFileOptions = {}): Promise<ExportResult> {
  assertVideo(video);
  expectString(path, "path");
  const format = containerOf(path);
  const fps = resolveFps(options.fps, video);
  const codec = expectOneOf(options.codec ?? (format === "webm" ? "vp9" : "h264"), "codec", VIDEO_CODECS);
  if (format === "webm" && codec !== "vp9") throw invalidParameter("codec", `"vp9" for a .webm file`, codec, "range");
  if (format === "mp4" && codec === "vp9") throw invalidParameter("codec", `"h264" or "h265" for a .mp4 file`, codec, "range");
  const crf = expectInt(options.crf ?? (codec === "vp9" ? 31 : 18), "crf", { min: 0, max: codec === "vp9" ? 63 : 51 });
  const needsEven = codec !== "vp9";
  const width = needsEven ? video.width + (video.width % 2) : video.width;
  const height = needsEven ? video.height + (video.height % 2) : video.height;
  const { signal, onProgress } = options;

  const codecArgs =
    codec === "h264"
      ? ["-c:v", "libx264", "-preset", "medium", "-crf", String(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
      : codec === "h265"
        ? ["-c:v", "libx265", "-preset", "medium", "-crf", String(crf), "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-movflags", "+faststart", "-x265-params", "log-level=error"]
        : ["-c:v", "libvpx-vp9", "-crf", String(crf), "-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1", "-pix_fmt", "yuv420p"];

  await writeAtomically(path, signal, async (tmp) => {
    const args = [
      "-hide_banner", "-loglevel", "error", "-y",
      "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-r", String(fps), "-i", "pipe:0",
      "-an", ...codecArgs, "-f", format, tmp,
    ];
    const run = runFfmpeg(args, { signal, what: `Writing ${path}` });
    try {
      for (let f = 0; f < video.numFrames; f++) {
        if (signal?.aborted) break;
        await writeChunk(run.child, paddedFrame(frameAsUint8(video, f), video.width, video.height, width, height));
        onProgress?.({ phase: "encode", frame: f + 1, numFrames: video.numFrames });
      }
    } catch {
      // ffmpeg stopped reading: its exit status below carries the reason.
    }
    run.child.stdin.end();
    await run.done;
  });
  return { path, format, numFrames: video.numFrames, width, height, fps };
}

async function exportAnimation(video: Video, path: string, format: "gif" | "webp", options: ExportWebpOptions): Promise<ExportResult> {
  assertVideo(video);
  expectString(path, "path");
  const fps = resolveFps(options.fps, video);
  const loop = expectInt(options.loop ?? 0, "loop", { min: 0, max: 65535 });
  const { signal, onProgress } = options;
  const u8 = videoToUint8(video);
  const { numFrames, width, height } = u8;
  // One delay per frame: a single number would apply to the first frame only.
  const delay = new Array<number>(numFrames).fill(Math.round(1000 / fps));
  await writeAtomically(path, signal, async (tmp) => {
    const input = sharp(Buffer.from(u8.data.buffer, u8.data.byteOffset, u8.data.length), {
      raw: { width, height: height * numFrames, channels: 3, pageHeight: height },
      limitInputPixels: false,
    } as SharpOptions);
    let encoder: Sharp;
    if (format === "gif") {
      encoder = input.gif({ delay, loop });
    } else {
      const quality = expectInt(options.quality ?? 90, "quality", { min: 1, max: 100 });
      const lossless = expectBoolean(options.lossless ?? false, "lossless");
      encoder = input.webp({ delay, loop, quality, lossless });
    }
    const buf = await encoder.toBuffer();
    throwIfAborted(signal, path);
    await writeFile(tmp, buf);
  });
  onProgress?.({ phase: "encode", frame: numFrames, numFrames });
  return { path, format, numFrames, width, height, fps };
}

/** Writes an animated GIF through sharp (256-colour palette; frame delays round to 10 ms). */
export function exportToGif(video: Video, path: string, options: ExportAnimationOptions = {}): Promise<ExportResult> {
  return exportAnimation(video, path, "gif", options);
}

/** Writes an animated WebP through sharp. */
export function exportToWebp(video: Video, path: string, options: ExportWebpOptions = {}): Promise<ExportResult> {
  return exportAnimation(video, path, "webp", options);
}

/** Expands a printf-style `%d` / `%0Nd` in `pattern` with `index`. */
export function formatFrameName(pattern: string, index: number): string {
  return pattern.replace(/%(0?)(\d*)d/, (_m, zero: string, width: string) => String(index).padStart(width ? Number(width) : 0, zero ? "0" : " "));
}

function checkPattern(pattern: string): string {
  expectString(pattern, "pattern");
  if ((pattern.match(/%0?\d*d/g) ?? []).length !== 1 || pattern.includes("/") || pattern.includes(sep)) {
    throw invalidParameter("pattern", 'a file name with one %d or %0Nd (e.g. "frame_%04d.png")', pattern, typeof pattern === "string" ? "range" : "type");
  }
  return pattern;
}

/**
 * Writes every frame as a PNG (lossless, bit-exact) into `dir` (created if missing), named by
 * `pattern` (`frame_0000.png`, ...). The frames are written to a temp folder next to `dir` and
 * moved in at the end, so an aborted export adds nothing to `dir`. Existing files of the same
 * names are replaced.
 */
export async function exportFrames(video: Video, dir: string, options: ExportFramesOptions = {}): Promise<ExportResult> {
  assertVideo(video);
  expectString(dir, "dir");
  const pattern = checkPattern(options.pattern ?? "frame_%04d.png");
  const { signal, onProgress } = options;
  throwIfAborted(signal, dir);
  assertWritable(dir, "folder");
  const target = resolve(dir);
  const stage = tempSibling(target);
  const names: string[] = [];
  track(stage);
  try {
    await mkdir(stage);
    for (let f = 0; f < video.numFrames; f++) {
      throwIfAborted(signal, dir);
      const name = formatFrameName(pattern, f);
      const png = await sharp(frameAsUint8(video, f), { raw: { width: video.width, height: video.height, channels: 3 } }).png().toBuffer();
      await writeFile(join(stage, name), png);
      names.push(name);
      onProgress?.({ phase: "encode", frame: f + 1, numFrames: video.numFrames });
    }
    throwIfAborted(signal, dir);
    if (!existsSync(target)) {
      await rename(stage, target);
    } else {
      for (const name of names) await rename(join(stage, name), join(target, name));
      await rmdir(stage);
    }
    untrack(stage);
  } catch (err) {
    await rm(stage, { recursive: true, force: true });
    untrack(stage);
    if (err instanceof TorchvidError || err instanceof TypeError || err instanceof RangeError) throw err;
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write frames to ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return {
    path: dir,
    format: "png",
    numFrames: video.numFrames,
    width: video.width,
    height: video.height,
    fps: resolveFps(undefined, video),
    files: names.map((n) => join(dir, n)),
  };
}

/** What `exportVideo` will write for `path`. */
export type OutputTarget =
  | { kind: "mp4" | "webm" | "gif" | "webp"; path: string }
  | { kind: "frames"; dir: string; pattern?: string };

/**
 * Decides the output format from `path`: .mp4 .webm .gif .webp; a `.png` name (with `%04d`, or
 * numbered as `<name>_0000.png` without); a folder (an existing one, a path ending in `/`, or a
 * name with no extension) gets `frame_0000.png`, ... Throws ERR_TORCHVID_VIDEO listing the
 * supported outputs for anything else.
 */
export function outputTarget(path: string): OutputTarget {
  expectString(path, "path");
  if (path === "") throw invalidParameter("path", "a file or folder path", path, "range");
  const ext = extname(path).toLowerCase();
  const isDir = path.endsWith("/") || path.endsWith(sep) || (existsSync(path) && statSync(path).isDirectory());
  if (isDir || ext === "") return { kind: "frames", dir: path };
  switch (ext) {
    case ".mp4":
    case ".m4v":
      return { kind: "mp4", path };
    case ".webm":
      return { kind: "webm", path };
    case ".gif":
      return { kind: "gif", path };
    case ".webp":
      return { kind: "webp", path };
    case ".png": {
      const name = basename(path);
      const pattern = /%0?\d*d/.test(name) ? name : `${name.slice(0, -4)}_%04d.png`;
      return { kind: "frames", dir: dirname(path), pattern };
    }
    default:
      throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: unsupported extension "${ext}"; supported: ${SUPPORTED_OUTPUTS}`);
  }
}

/** Writes `video` in the format its path names (see `outputTarget`). */
export async function exportVideo(video: Video, path: string, options: ExportOptions = {}): Promise<ExportResult> {
  assertVideo(video);
  const target = outputTarget(path);
  switch (target.kind) {
    case "mp4":
    case "webm":
      return exportToVideo(video, path, options);
    case "gif":
      return exportToGif(video, path, options);
    case "webp":
      return exportToWebp(video, path, options);
    case "frames": {
      return exportFrames(video, target.dir, { ...options, ...(target.pattern !== undefined ? { pattern: target.pattern } : {}) });
    }
  }
}
