/**
 * Conversions between uint8 and float videos, and resizing (sharp, frame by frame).
 */

import sharp from "sharp";
import { TorchvidError } from "../errors.ts";
import { expectInt, expectOneOf } from "../validate.ts";
import { assertVideo, frameSize, type FloatVideo, type Uint8Video, type Video } from "./types.ts";

/** How a frame is fitted into a new size (sharp's names). */
export type ResizeMode = "fill" | "cover" | "contain";
export const RESIZE_MODES: readonly ResizeMode[] = ["fill", "cover", "contain"];

/** float in [0,1] -> uint8, as diffusers does: round(clamp(x, 0, 1) * 255). */
function floatToUint8Into(src: Float32Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) {
    const x = src[i]!;
    // NaN maps to 0, like numpy's clip + astype on most platforms.
    dst[i] = x > 0 ? (x < 1 ? Math.round(x * 255) : 255) : 0;
  }
}

/** One frame of `video` as uint8 bytes (a view, not a copy, when the data already is uint8). */
export function frameAsUint8(video: Video, index: number): Uint8Array {
  const size = frameSize(video);
  const slice = video.data.subarray(index * size, (index + 1) * size);
  if (slice instanceof Uint8Array) return slice;
  const out = new Uint8Array(size);
  floatToUint8Into(slice, out);
  return out;
}

/** Returns a uint8 video (the same object when it already is one). */
export function videoToUint8(video: Video): Uint8Video {
  assertVideo(video);
  if (video.data instanceof Uint8Array) return video as Uint8Video;
  const data = new Uint8Array(video.data.length);
  floatToUint8Into(video.data, data);
  return { ...video, data };
}

/** Returns a float video in [0, 1] (the same object when it already is one). */
export function videoToFloat(video: Video): FloatVideo {
  assertVideo(video);
  if (video.data instanceof Float32Array) return video as FloatVideo;
  const src = video.data;
  const data = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) data[i] = src[i]! / 255;
  return { ...video, data };
}

export interface ResizeOptions {
  /**
   * How the frame fits the new size:
   * - `"fill"`: stretch to exactly width x height (aspect ratio not kept; the zeroscope recipe);
   * - `"cover"`: scale to cover, then crop the centre;
   * - `"contain"`: scale to fit inside, then pad with black.
   *
   * Defaults to `"fill"`.
   */
  resize?: ResizeMode;
}

/**
 * Resizes every frame to `width` x `height` with sharp (Lanczos 3). A float video is resized
 * through uint8 (so it comes back quantised to 1/255) and returned as float.
 */
export async function resizeVideo(video: Video, width: number, height: number, options: ResizeOptions = {}): Promise<Video> {
  assertVideo(video);
  expectInt(width, "width", { min: 1 });
  expectInt(height, "height", { min: 1 });
  const fit = expectOneOf(options.resize ?? "fill", "resize", RESIZE_MODES);
  if (width === video.width && height === video.height) return video;
  const out = new Uint8Array(video.numFrames * width * height * 3);
  const outSize = width * height * 3;
  for (let f = 0; f < video.numFrames; f++) {
    const frame = await resizeFrame(frameAsUint8(video, f), video.width, video.height, width, height, fit);
    out.set(frame, f * outSize);
  }
  const resized: Video = { numFrames: video.numFrames, height, width, data: out, ...(video.fps !== undefined ? { fps: video.fps } : {}) };
  return video.data instanceof Float32Array ? videoToFloat(resized) : resized;
}

/** Resizes one uint8 RGB frame. */
export async function resizeFrame(
  frame: Uint8Array,
  width: number,
  height: number,
  toWidth: number,
  toHeight: number,
  fit: ResizeMode,
): Promise<Uint8Array> {
  if (width === toWidth && height === toHeight) return frame;
  const { data, info } = await sharp(frame, { raw: { width, height, channels: 3 } })
    .resize(toWidth, toHeight, { fit, position: "centre", background: { r: 0, g: 0, b: 0 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== toWidth || info.height !== toHeight || info.channels !== 3) {
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `sharp returned a ${info.width}x${info.height}x${info.channels} frame, expected ${toWidth}x${toHeight}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
