/**
 * Generation requests as plain JSON: what the studio's `POST /api/generate`, a queued BullMQ job
 * and a line of `torchvid generate --prompts FILE` (JSONL) carry. One checker for all of them, so
 * a bad request is refused with the same message wherever it comes in, before any model is loaded
 * and before anything is queued. Model-dependent checks (a size the VAE cannot take, clipSkip past
 * the text encoder's depth) still run in `generate()`.
 */
import { SCHEDULER_NAMES, type SchedulerName } from "./schedulers/index.ts";
import type { GenerateOptions } from "./pipelines/options.ts";
import { expectInt, expectNumber, invalidParameter } from "./validate.ts";

/** Limits a server or a queue may tighten (a public studio should not accept 1000-frame jobs). */
export interface RequestLimits {
  /** Largest width or height in pixels. Defaults to 4096. */
  maxSize?: number;
  /** Most frames per video. Defaults to 1024. */
  maxFrames?: number;
  /** Most denoising steps (the schedulers' 1000 training timesteps). Defaults to 1000. */
  maxSteps?: number;
  /** Longest prompt, in characters. Defaults to 10000. */
  maxPromptLength?: number;
}

/** A text-to-video request. Every field but `prompt` is optional and takes generate()'s default. */
export interface GenerateRequest {
  prompt: string;
  negativePrompt?: string;
  /** Frames per video. */
  numFrames?: number;
  numInferenceSteps?: number;
  /** Pixels, a multiple of 8. */
  width?: number;
  /** Pixels, a multiple of 8. */
  height?: number;
  guidanceScale?: number;
  /** DDIM's eta, >= 0. */
  eta?: number;
  /** An integer in [0, 2^53): JSON cannot carry larger ones exactly. */
  seed?: number;
  /** A short scheduler name (`"dpm++"`, `"ddim"`, ...); defaults to the model's own scheduler. */
  scheduler?: SchedulerName;
  /** Frames per second of the written video. Defaults to 8. */
  fps?: number;
  /** A model folder or Hub id; defaults to whatever the server or worker loaded. */
  model?: string;
  /** Videos for this prompt (diffusers' num_videos_per_prompt). Defaults to 1. */
  numVideosPerPrompt?: number;
}

/** A video-to-video (upscale / re-render) request. */
export interface UpscaleRequest extends Omit<GenerateRequest, "prompt" | "numFrames"> {
  /** The input: a file path or, in the studio, a job id or a file in its output folder. */
  video: string;
  /** The prompt that guides the re-render. Defaults to "" (the studio fills in the source job's). */
  prompt?: string;
  /** How much to change the video, in (0, 1]. Defaults to 0.6. */
  strength?: number;
}

const GENERATE_FIELDS = [
  "prompt", "negativePrompt", "numFrames", "numInferenceSteps", "width", "height", "guidanceScale", "eta", "seed",
  "scheduler", "fps", "model", "numVideosPerPrompt",
] as const;
const UPSCALE_FIELDS = [...GENERATE_FIELDS, "video", "strength"] as const;

function checkFieldNames(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (allowed.includes(key)) continue;
    const squash = (s: string) => s.replace(/[_-]/g, "").toLowerCase();
    const hint = allowed.find((k) => squash(k) === squash(key));
    throw new TypeError(`Unknown field ${JSON.stringify(key)}${hint ? `: did you mean ${JSON.stringify(hint)}?` : `; known fields: ${allowed.join(", ")}`}`);
  }
}

function checkSize(value: unknown, name: "width" | "height", max: number): number {
  const n = expectInt(value, name, { min: 8, max });
  if (n % 8 !== 0) {
    const below = Math.floor(n / 8) * 8;
    throw new RangeError(`${name} must be a multiple of 8 but received ${n}: try ${below >= 8 ? `${below} or ` : ""}${below + 8}`);
  }
  return n;
}

function checkText(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== "string") throw invalidParameter(name, "a string", value, "type");
  if (value.length > maxLength) throw new RangeError(`${name} is ${value.length} characters long; the limit is ${maxLength}`);
  return value;
}

function checkFields(body: Record<string, unknown>, limits: RequestLimits): Omit<GenerateRequest, "prompt"> {
  const maxSize = limits.maxSize ?? 4096;
  const out: Omit<GenerateRequest, "prompt"> = {};
  const has = (key: string) => body[key] !== undefined && body[key] !== null;
  if (has("negativePrompt")) out.negativePrompt = checkText(body.negativePrompt, "negativePrompt", limits.maxPromptLength ?? 10000);
  if (has("numFrames")) out.numFrames = expectInt(body.numFrames, "numFrames", { min: 1, max: limits.maxFrames ?? 1024 });
  if (has("numInferenceSteps")) out.numInferenceSteps = expectInt(body.numInferenceSteps, "numInferenceSteps", { min: 1, max: limits.maxSteps ?? 1000 });
  if (has("width")) out.width = checkSize(body.width, "width", maxSize);
  if (has("height")) out.height = checkSize(body.height, "height", maxSize);
  if (has("guidanceScale")) out.guidanceScale = expectNumber(body.guidanceScale, "guidanceScale", { min: 0, max: 100 });
  if (has("eta")) out.eta = expectNumber(body.eta, "eta", { min: 0, max: 1 });
  if (has("seed")) out.seed = expectInt(body.seed, "seed", { min: 0, max: Number.MAX_SAFE_INTEGER });
  if (has("scheduler")) {
    const names = Object.keys(SCHEDULER_NAMES);
    if (typeof body.scheduler !== "string" || !names.includes(body.scheduler)) {
      throw invalidParameter("scheduler", `one of ${names.map((n) => JSON.stringify(n)).join(", ")}`, body.scheduler, typeof body.scheduler === "string" ? "range" : "type");
    }
    out.scheduler = body.scheduler as SchedulerName;
  }
  if (has("fps")) out.fps = expectNumber(body.fps, "fps", { min: 1, max: 240 });
  if (has("model")) {
    out.model = checkText(body.model, "model", 1000);
    if (out.model.trim() === "") throw new RangeError("model is empty: pass a model folder or Hub id, or leave model out");
  }
  if (has("numVideosPerPrompt")) out.numVideosPerPrompt = expectInt(body.numVideosPerPrompt, "numVideosPerPrompt", { min: 1, max: 16 });
  return out;
}

function expectObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalidParameter(what, "a JSON object such as {\"prompt\": \"a corgi on the beach\"}", body, "type");
  }
  return body as Record<string, unknown>;
}

/**
 * Checks a text-to-video request and returns it with only known, well-typed fields. Throws a
 * TypeError/RangeError whose message names the field and the fix.
 */
export function checkGenerateRequest(body: unknown, limits: RequestLimits = {}): GenerateRequest {
  const record = expectObject(body, "request");
  checkFieldNames(record, GENERATE_FIELDS);
  if (record.prompt === undefined || record.prompt === null) throw new TypeError('prompt is missing: pass {"prompt": "a corgi on the beach", ...}');
  const prompt = checkText(record.prompt, "prompt", limits.maxPromptLength ?? 10000);
  if (prompt.trim() === "") throw new RangeError("prompt is empty: describe the video to generate");
  return { prompt, ...checkFields(record, limits) };
}

/** Checks a video-to-video request (see checkGenerateRequest). */
export function checkUpscaleRequest(body: unknown, limits: RequestLimits = {}): UpscaleRequest {
  const record = expectObject(body, "request");
  checkFieldNames(record, UPSCALE_FIELDS);
  if (typeof record.video !== "string" || record.video.trim() === "") {
    throw invalidParameter("video", "the input video: a file path (or, in the studio, a job id)", record.video, typeof record.video === "string" ? "range" : "type");
  }
  // Video-to-video takes its frame count from the input; generate() would refuse it only in the
  // worker, after the job was queued.
  if (record.numFrames !== undefined && record.numFrames !== null) {
    throw new TypeError("numFrames cannot be set for an upscale: the input video sets it; leave numFrames out");
  }
  const out: UpscaleRequest = { video: record.video, ...checkFields(record, limits) };
  if (record.prompt !== undefined && record.prompt !== null) out.prompt = checkText(record.prompt, "prompt", limits.maxPromptLength ?? 10000);
  if (record.strength !== undefined && record.strength !== null) {
    const s = expectNumber(record.strength, "strength", { max: 1 });
    if (!(s > 0)) throw new RangeError(`Expected strength in (0, 1] but received ${s}: 0 would return the input unchanged`);
    out.strength = s;
  }
  return out;
}

/**
 * The generate() options a checked request stands for. `scheduler`, `fps` and `model` are not
 * generate() options: the caller applies them (a scheduler on the pipeline, fps at export).
 */
export function requestToOptions(request: GenerateRequest | UpscaleRequest): GenerateOptions & { strength?: number } {
  const { scheduler: _s, fps: _f, model: _m, video: _v, ...rest } = request as UpscaleRequest;
  const options: GenerateOptions & { strength?: number } = { ...rest, prompt: rest.prompt ?? "" };
  return options;
}
