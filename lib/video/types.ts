/**
 * The frames object every torchvid video function takes and returns.
 */

import { invalidParameter } from "../validate.ts";

/**
 * A clip of RGB frames, laid out [frame, row, column, channel] with 3 channels (R, G, B).
 *
 * - `Uint8Array` data holds 0..255;
 * - `Float32Array` data holds 0..1 (values outside are clamped when written).
 */
export interface Video {
  numFrames: number;
  height: number;
  width: number;
  data: Uint8Array | Float32Array;
  /** Frames per second, when known (set by `readVideo`; the pipelines leave it out). */
  fps?: number;
}

/** A Video whose data is uint8. */
export interface Uint8Video extends Video {
  data: Uint8Array;
}

/** A Video whose data is float32 in [0, 1]. */
export interface FloatVideo extends Video {
  data: Float32Array;
}

/** Progress of a media operation: `frame` of `numFrames` done in `phase`. */
export interface VideoProgress {
  phase: "encode" | "decode";
  frame: number;
  numFrames: number;
}

/** Throws a TypeError / RangeError naming `name` unless `video` is a well-formed Video. */
export function assertVideo(video: unknown, name = "video"): asserts video is Video {
  if (typeof video !== "object" || video === null) throw invalidParameter(name, "a Video object { numFrames, height, width, data }", video, "type");
  const v = video as Partial<Video>;
  for (const key of ["numFrames", "height", "width"] as const) {
    const n = v[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw invalidParameter(`${name}.${key}`, "a positive integer", n, typeof n === "number" ? "range" : "type");
  }
  if (!(v.data instanceof Uint8Array) && !(v.data instanceof Float32Array)) {
    throw invalidParameter(`${name}.data`, "a Uint8Array or Float32Array", v.data, "type");
  }
  const expected = v.numFrames! * v.height! * v.width! * 3;
  if (v.data.length !== expected) {
    throw new RangeError(
      `Expected ${name}.data of length ${expected} (numFrames ${v.numFrames} x height ${v.height} x width ${v.width} x 3) but received length ${v.data.length}`,
    );
  }
  if (v.fps !== undefined && (typeof v.fps !== "number" || !(v.fps > 0))) throw invalidParameter(`${name}.fps`, "a positive number", v.fps, typeof v.fps === "number" ? "range" : "type");
}

/** Bytes (uint8) or values (float) in one frame. */
export function frameSize(video: Pick<Video, "height" | "width">): number {
  return video.height * video.width * 3;
}
