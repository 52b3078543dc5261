/**
 * Reading videos for video-to-video: a video file through ffmpeg (raw rgb24 on its stdout), an
 * animated WebP or a still image through sharp, or a folder / glob of images (natural order).
 */

import { readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { AbortError, TorchvidError } from "../errors.ts";
import { expectInt, expectNumber, expectOneOf, expectString } from "../validate.ts";
import { RESIZE_MODES, resizeVideo, type ResizeMode } from "./convert.ts";
import { ffmpegErrorLine, runFfmpeg } from "./ffmpeg.ts";
import type { Uint8Video } from "./types.ts";

/** Image files read as frames (from a folder, a glob, or one file). */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".avif"];

export interface ReadVideoOptions {
  /** Keep at most this many frames (after fps resampling). */
  maxFrames?: number;
  /**
   * Resample to this many frames per second (frames are dropped or repeated, as ffmpeg's `fps`
   * filter does). For a folder of images, which has no rate of its own, it only sets `fps`.
   * Defaults to the source rate (8 for images).
   */
  fps?: number;
  /** Resize frames to this width; with only one of width / height the other keeps the aspect ratio. */
  width?: number;
  /** Resize frames to this height. */
  height?: number;
  /** How frames fit width x height: `"fill"` (stretch), `"cover"` (crop), `"contain"` (pad). Defaults to `"fill"`. */
  resize?: ResizeMode;
  /** Stops decoding (kills ffmpeg). */
  signal?: AbortSignal;
  /**
   * Largest frame accepted, in pixels (width x height, before resizing). A file declaring more is
   * refused before it is decoded: a 100-byte GIF can claim 16000x16000. Defaults to
   * DEFAULT_MAX_PIXELS (4096 x 4096).
   */
  maxPixels?: number;
  /**
   * Most bytes of decoded RGB frames kept (frames x width x height x 3, before resizing); decoding
   * stops with an error beyond it (pass maxFrames or fps to read part of a long video). Defaults
   * to DEFAULT_MAX_BYTES (2 GiB).
   */
  maxBytes?: number;
}

/** Default `maxPixels` of readVideo: 4096 x 4096 (4K UHD frames fit). */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;
/** Default `maxBytes` of readVideo: 2 GiB of decoded RGB frames. */
export const DEFAULT_MAX_BYTES = 2 ** 31;

function tooLarge(file: string, width: number, height: number, maxPixels: number): TorchvidError {
  return videoError(
    `Cannot read ${file}: its frames are ${width}x${height} (${width * height} pixels), more than the limit of ${maxPixels} pixels (maxPixels, default 4096x4096); ` +
      `resize it first (e.g. ffmpeg -i in -vf scale=1024:-2 out.mp4) or pass a larger maxPixels if you have the memory`,
  );
}

/** A decoded clip: uint8 frames with the rate they play at. */
export type DecodedVideo = Uint8Video & { fps: number };

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** Sorts file names as a person would: frame2 before frame10. */
export function naturalSort(names: string[]): string[] {
  return [...names].sort(collator.compare);
}

function videoError(message: string, cause?: unknown): TorchvidError {
  return new TorchvidError("ERR_TORCHVID_VIDEO", message, cause === undefined ? undefined : { cause });
}

function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        re += `[${body.startsWith("!") ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Image files of a folder, or of a glob whose wildcards are in the last path part, sorted naturally. */
function listImages(input: string): string[] {
  const isGlob = /[*?[]/.test(input);
  let dir = input;
  let match: (name: string) => boolean = () => true;
  if (isGlob) {
    dir = dirname(input);
    if (/[*?[]/.test(dir)) throw videoError(`Cannot read ${input}: wildcards are supported in the file name part only`);
    const re = globToRegExp(basename(input));
    match = (name) => re.test(name);
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw videoError(`Cannot read ${input}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? `folder ${dir} does not exist` : (err as Error).message}`, err);
  }
  const images = naturalSort(names.filter((n) => !n.startsWith(".") && match(n) && IMAGE_EXTENSIONS.includes(extname(n).toLowerCase())));
  if (images.length === 0) throw videoError(`Cannot read ${input}: no images (${IMAGE_EXTENSIONS.join(" ")}) found there`);
  return images.map((n) => join(dir, n));
}

/** Indices of source frames shown at each output tick of `fps`, given each source frame's start time. */
function resampleIndices(starts: number[], duration: number, fps: number): number[] {
  const out: number[] = [];
  const count = Math.max(1, Math.round(duration * fps));
  let k = 0;
  for (let i = 0; i < count; i++) {
    const t = i / fps + 1e-9;
    while (k + 1 < starts.length && starts[k + 1]! <= t) k++;
    out.push(k);
  }
  return out;
}

function pickFrames(video: DecodedVideo, indices: number[]): DecodedVideo {
  const size = video.width * video.height * 3;
  const data = new Uint8Array(indices.length * size);
  indices.forEach((src, i) => data.set(video.data.subarray(src * size, (src + 1) * size), i * size));
  return { ...video, numFrames: indices.length, data };
}

async function readImage(file: string, maxPixels: number): Promise<{ data: Uint8Array; width: number; height: number }> {
  try {
    const meta = await sharp(file, { limitInputPixels: false }).metadata();
    if (meta.width && meta.height && meta.width * meta.height > maxPixels) throw tooLarge(file, meta.width, meta.height, maxPixels);
    const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (err) {
    if (err instanceof TorchvidError) throw err;
    throw videoError(`Cannot decode image ${file}: ${(err as Error).message}`, err);
  }
}

async function readImages(files: string[], options: ReadVideoOptions): Promise<DecodedVideo> {
  const fps = options.fps ?? 8;
  const limit = options.maxFrames !== undefined ? files.slice(0, options.maxFrames) : files;
  const target = options.width !== undefined || options.height !== undefined;
  const frames: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  for (const file of limit) {
    if (options.signal?.aborted) throw new AbortError("Reading images was aborted", { cause: options.signal.reason });
    const img = await readImage(file, options.maxPixels ?? DEFAULT_MAX_PIXELS);
    if (frames.length === 0) ({ width, height } = img);
    else if ((img.width !== width || img.height !== height) && !target) {
      throw videoError(`Cannot read ${file} as a frame: it is ${img.width}x${img.height} but ${limit[0]} is ${width}x${height}; pass width/height to resize them all`);
    }
    if (img.width !== width || img.height !== height) {
      // Bring odd-sized images to the first one's size; the final resize below does the rest.
      const v = await resizeVideo({ numFrames: 1, width: img.width, height: img.height, data: img.data }, width, height, { resize: options.resize ?? "fill" });
      frames.push(v.data as Uint8Array);
    } else frames.push(img.data);
  }
  const data = new Uint8Array(frames.length * width * height * 3);
  frames.forEach((f, i) => data.set(f, i * f.length));
  return { numFrames: frames.length, width, height, data, fps };
}

async function readAnimatedWebp(file: string, options: ReadVideoOptions): Promise<DecodedVideo> {
  let meta: Metadata;
  let raw: { data: Buffer; info: OutputInfo };
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    meta = await sharp(file, { animated: true, limitInputPixels: false }).metadata();
    const frameHeight = meta.pageHeight ?? meta.height ?? 0;
    if (meta.width && frameHeight && meta.width * frameHeight > maxPixels) throw tooLarge(file, meta.width, frameHeight, maxPixels);
    if (meta.width && meta.height && meta.width * meta.height * 3 > (options.maxBytes ?? DEFAULT_MAX_BYTES)) {
      throw videoError(`Cannot read ${file}: its ${meta.pages ?? 1} frames of ${meta.width}x${frameHeight} decode to more than ${options.maxBytes ?? DEFAULT_MAX_BYTES} bytes (maxBytes, default 2 GiB): pass maxFrames, or a larger maxBytes`);
    }
    raw = await sharp(file, { animated: true }).removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (err instanceof TorchvidError) throw err;
    throw videoError(`Cannot decode video ${file}: ${(err as Error).message}`, err);
  }
  const pages = meta.pages ?? 1;
  const width = raw.info.width;
  const height = meta.pageHeight ?? raw.info.height / pages;
  const delays = meta.delay && meta.delay.length === pages ? meta.delay.map((d) => (d > 0 ? d : 100)) : new Array<number>(pages).fill(125);
  const total = delays.reduce((a, b) => a + b, 0) / 1000;
  let video: DecodedVideo = {
    numFrames: pages,
    width,
    height,
    data: new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length),
    fps: pages / total,
  };
  if (options.fps !== undefined) {
    const starts: number[] = [];
    delays.reduce((t, d) => (starts.push(t), t + d / 1000), 0);
    video = { ...pickFrames(video, resampleIndices(starts, total, options.fps)), fps: options.fps };
  }
  if (options.maxFrames !== undefined && video.numFrames > options.maxFrames) video = pickFrames(video, [...Array(options.maxFrames).keys()]);
  return video;
}

/** The first video stream's line in a section (`Input #0` or `Output #0`) of ffmpeg's stderr. */
function streamLine(stderr: string, section: "Input" | "Output"): string | undefined {
  const start = stderr.indexOf(`${section} #0`);
  if (start < 0) return undefined;
  const rest = stderr.slice(start);
  return rest.split(/\r?\n/).find((l) => /Stream #\d+:\d+.*: Video: /.test(l));
}

/** Parses "WxH" and the frame rate out of an ffmpeg stream line. */
export function parseStreamLine(line: string): { width?: number; height?: number; fps?: number } {
  const size = /[\s,](\d+)x(\d+)(?=[\s,\]])/.exec(line);
  const rate = /(\d+(?:\.\d+)?)(k?) fps/.exec(line) ?? /(\d+(?:\.\d+)?)(k?) tbr/.exec(line);
  return {
    ...(size ? { width: Number(size[1]), height: Number(size[2]) } : {}),
    ...(rate ? { fps: Number(rate[1]) * (rate[2] ? 1000 : 1) } : {}),
  };
}

async function readWithFfmpeg(file: string, options: ReadVideoOptions): Promise<DecodedVideo> {
  const args = ["-hide_banner", "-nostdin", "-nostats", "-i", file, "-an", "-sn"];
  if (options.fps !== undefined) args.push("-vf", `fps=${options.fps}`);
  else args.push("-vsync", "passthrough"); // every decoded frame once, no duplicates or drops
  if (options.maxFrames !== undefined) args.push("-frames:v", String(options.maxFrames));
  args.push("-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1");
  const run = runFfmpeg(args, { signal: options.signal, what: `Decoding ${file}` });
  run.child.stdin.end();
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  // ffmpeg reports the input's frame size before it decodes a frame: refuse a too-large one then
  // (a tiny file can declare 16000x16000), and stop keeping frames past maxBytes.
  let refused: TorchvidError | null = null;
  const refuse = (err: TorchvidError) => {
    if (refused) return;
    refused = err;
    run.child.kill("SIGKILL");
  };
  let head = "";
  const onStderr = (chunk: string | Buffer) => {
    if (head.length > 64 * 1024) return;
    head += chunk.toString();
    const size = parseStreamLine(streamLine(head, "Input") ?? "");
    if (size.width && size.height && size.width * size.height > maxPixels) refuse(tooLarge(file, size.width, size.height, maxPixels));
  };
  run.child.stderr.on("data", onStderr);
  const chunks: Buffer[] = [];
  let bytes = 0;
  run.child.stdout.on("data", (c: Buffer) => {
    if (refused) return;
    bytes += c.length;
    if (bytes > maxBytes) {
      chunks.length = 0;
      refuse(videoError(`Cannot read ${file}: its decoded frames pass ${maxBytes} bytes (maxBytes, default 2 GiB): pass maxFrames (--frames) or a lower fps to read part of it, or a larger maxBytes`));
      return;
    }
    chunks.push(c);
  });
  let stderr: string;
  try {
    stderr = await run.done;
    if (refused) throw refused;
  } catch (err) {
    if (refused) throw refused;
    if (err instanceof TorchvidError && err.code === "ERR_TORCHVID_VIDEO") {
      const log = (err as TorchvidError & { stderr?: string }).stderr ?? err.message;
      // ffmpeg's last words ("Conversion failed!") say nothing: use the line that names the problem.
      let detail = ffmpegErrorLine(log.split(/\r?\n/).filter((l) => !/Conversion failed!|Error marking filters as finished|after EOF/.test(l)).join("\n"));
      if (detail.startsWith(`${file}: `)) detail = detail.slice(file.length + 2);
      if (/does not contain any stream|matches no streams/.test(detail)) detail = "it has no video stream";
      if (/partial file|moov atom not found|End of file|Truncating packet/i.test(log)) {
        detail = `the file is truncated (it ends before its video data does: an interrupted download or copy?). Copy or download it again, or keep the frames that are there with: ffmpeg -i ${JSON.stringify(file)} -c:v libx264 fixed.mp4 (ffmpeg: ${detail})`;
      }
      throw videoError(`Cannot decode video ${file}: ${detail}`, err);
    }
    throw err;
  }
  const input = parseStreamLine(streamLine(stderr, "Input") ?? "");
  const output = parseStreamLine(streamLine(stderr, "Output") ?? "");
  const width = output.width ?? input.width;
  const height = output.height ?? input.height;
  if (!width || !height) throw videoError(`Cannot decode video ${file}: ffmpeg did not report a frame size (no video stream?)`);
  const frame = width * height * 3;
  if (bytes === 0) throw videoError(`Cannot decode video ${file}: no frames in it`);
  if (bytes % frame !== 0) throw videoError(`Cannot decode video ${file}: got ${bytes} bytes, not a whole number of ${width}x${height} frames`);
  if (/partial file|moov atom not found/i.test(stderr)) {
    process.emitWarning(`${file} is truncated (it ends before its video data does): read the ${bytes / frame} frames before the cut`, "TorchvidWarning");
  }
  const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes);
  return {
    numFrames: bytes / frame,
    width,
    height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    fps: options.fps ?? input.fps ?? output.fps ?? 8,
  };
}

/**
 * Decodes a video into uint8 frames: `input` is a video file (MP4, WebM, GIF, MOV, MKV... anything
 * the ffmpeg build reads), an animated WebP, one image, a folder of images, or a glob such as
 * `frames/*.png` (wildcards in the file name only); images are taken in natural order
 * (frame2 before frame10) and must share one size unless width/height are given.
 * Throws ERR_TORCHVID_VIDEO with ffmpeg's or sharp's reason for a file it cannot decode.
 */
export async function readVideo(input: string, options: ReadVideoOptions = {}): Promise<DecodedVideo> {
  expectString(input, "input");
  if (options.maxFrames !== undefined) expectInt(options.maxFrames, "maxFrames", { min: 1 });
  if (options.fps !== undefined) expectNumber(options.fps, "fps", { min: 0.01, max: 1000 });
  if (options.width !== undefined) expectInt(options.width, "width", { min: 1 });
  if (options.height !== undefined) expectInt(options.height, "height", { min: 1 });
  if (options.resize !== undefined) expectOneOf(options.resize, "resize", RESIZE_MODES);
  if (options.maxPixels !== undefined) expectInt(options.maxPixels, "maxPixels", { min: 1 });
  if (options.maxBytes !== undefined) expectInt(options.maxBytes, "maxBytes", { min: 1 });
  if (options.signal?.aborted) throw new AbortError("Reading a video was aborted", { cause: options.signal.reason });

  let video: DecodedVideo;
  if (/[*?[]/.test(input)) {
    video = await readImages(listImages(input), options);
  } else {
    let st;
    try {
      st = statSync(input);
    } catch (err) {
      throw videoError(`Input video ${input} not found`, err);
    }
    const ext = extname(input).toLowerCase();
    if (st.isDirectory()) video = await readImages(listImages(input), options);
    else if (ext === ".webp") video = await readAnimatedWebp(input, options);
    else if (IMAGE_EXTENSIONS.includes(ext)) video = await readImages([input], options);
    else video = await readWithFfmpeg(input, options);
  }

  if (options.width !== undefined || options.height !== undefined) {
    const width = options.width ?? Math.max(1, Math.round((video.width * options.height!) / video.height));
    const height = options.height ?? Math.max(1, Math.round((video.height * options.width!) / video.width));
    video = { ...((await resizeVideo(video, width, height, { resize: options.resize ?? "fill" })) as Uint8Video), fps: video.fps };
  }
  return video;
}
