/**
 * The options of `generate()`, diffusers' `__call__` arguments in camelCase, and the checks that
 * run before any model does.
 */
import type { Generator, Tensor } from "../tensor.ts";
import type { Video } from "../video/types.ts";
import { invalidParameter } from "../validate.ts";

/** What `onStep` receives after every denoising step. */
export interface StepEvent {
  /** 1-based index of the step just finished. */
  step: number;
  numSteps: number;
  /** The timestep of this step. */
  timestep: number;
  /** Milliseconds since the denoising loop started. */
  elapsedMs: number;
  /** The latents after this step [B, 4, F, h, w]; valid only during the callback (do not dispose). */
  latents: Tensor;
  /** This step's UNet forward alone, ms, timed on the device thread (the rest of the step is the loop around it). */
  unetMs: number;
}

export type OutputType = "uint8" | "float" | "latent";

export interface GenerateOptions {
  /** The prompt, or one prompt per video. */
  prompt?: string | string[];
  /** What to steer away from (one, or one per prompt). Used only with guidance (guidanceScale > 1). Defaults to "". */
  negativePrompt?: string | string[];
  /** Output height in pixels (multiple of 8). Defaults to the UNet's sample_size x the VAE scale factor (256 for ms-1.7b). */
  height?: number;
  /** Output width in pixels (multiple of 8). Defaults like `height`. */
  width?: number;
  /** Frames per video. Defaults to 16. */
  numFrames?: number;
  /** Denoising steps. Defaults to 50. */
  numInferenceSteps?: number;
  /** Classifier-free guidance weight; <= 1 turns guidance off (half the UNet work). Defaults to 9.0. */
  guidanceScale?: number;
  /** DDIM's eta (0 = deterministic DDIM, 1 = DDPM-like); ignored by other schedulers. Defaults to 0. */
  eta?: number;
  /** Seed of a CPU generator, as `torch.Generator("cpu").manual_seed(seed)` in diffusers. */
  seed?: number | bigint;
  /** A generator (or one per video) instead of `seed`; its state advances. */
  generator?: Generator | Generator[];
  /** Initial latents [B, 4, F, h, w] instead of drawing them (scaled by the scheduler's init sigma, as diffusers). */
  latents?: Tensor;
  /** Precomputed prompt embeddings [B, 77, D] instead of `prompt`. */
  promptEmbeds?: Tensor;
  /** Precomputed negative embeddings [B, 77, D] instead of `negativePrompt`. */
  negativePromptEmbeds?: Tensor;
  /** Videos per prompt. Defaults to 1. */
  numVideosPerPrompt?: number;
  /** Take the text encoder's hidden states this many layers before the last. Defaults to none. */
  clipSkip?: number;
  /** "uint8" (default), "float" (values in [0, 1]) or "latent" (the final latents). */
  outputType?: OutputType;
  /** Called after every denoising step. */
  onStep?: (event: StepEvent) => void;
  /** Stops between steps; the promise rejects with an AbortError and device memory is freed. */
  signal?: AbortSignal;
}

export interface VideoToVideoOptions extends GenerateOptions {
  /** The video to re-render: a Video, an array of RGB images ({ width, height, data }), or a file/folder path. */
  video: Video | readonly ImageInput[] | string;
  /** How much to change the video, in (0, 1]: 1 ignores it, small values keep it. Defaults to 0.6. */
  strength?: number;
}

/** One RGB image, [row, column, RGB], uint8 or float in [0, 1]. */
export interface ImageInput {
  width: number;
  height: number;
  data: Uint8Array | Float32Array;
}

/** A finished generation: one Video per prompt x numVideosPerPrompt (diffusers' `.frames`). */
export interface VideoOutput {
  frames: Video[];
}

/** outputType "latent": the final latents [B, 4, F, h, w], copied to the host. */
export interface LatentOutput {
  latents: { shape: number[]; data: Float32Array };
}

const KNOWN_OPTIONS = new Set([
  "prompt", "negativePrompt", "height", "width", "numFrames", "numInferenceSteps", "guidanceScale", "eta", "seed",
  "generator", "latents", "promptEmbeds", "negativePromptEmbeds", "numVideosPerPrompt", "clipSkip", "outputType",
  "onStep", "signal", "video", "strength",
]);

/** Rejects option names that are not ours (a typo would otherwise silently use a default). */
export function checkOptionNames(options: object, allowed: ReadonlySet<string> = KNOWN_OPTIONS): void {
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) {
      const hint = [...allowed].find((k) => k.toLowerCase() === key.replace(/_/g, "").toLowerCase());
      throw new TypeError(`Unknown option ${JSON.stringify(key)} for generate()${hint ? `: did you mean ${JSON.stringify(hint)}?` : ""}`);
    }
  }
}

/** Normalises prompt/negativePrompt to arrays and checks their types and lengths. */
export function normalisePrompts(prompt: unknown, negative: unknown, hasEmbeds: boolean): { prompts: string[] | null; negatives: string[] | null } {
  let prompts: string[] | null = null;
  if (prompt !== undefined) {
    if (hasEmbeds) throw new TypeError("Pass either prompt or promptEmbeds, not both");
    prompts = typeof prompt === "string" ? [prompt] : Array.isArray(prompt) ? prompt : null;
    if (prompts === null) throw invalidParameter("prompt", "a string or an array of strings", prompt, "type");
    if (prompts.length === 0) throw new RangeError("Expected at least one prompt but received an empty array");
    prompts.forEach((p, i) => {
      if (typeof p !== "string") throw invalidParameter(`prompt[${i}]`, "a string", p, "type");
    });
  } else if (!hasEmbeds) {
    throw new TypeError("Pass a prompt (string or array of strings) or promptEmbeds");
  }
  let negatives: string[] | null = null;
  if (negative !== undefined) {
    negatives = typeof negative === "string" ? [negative] : Array.isArray(negative) ? negative : null;
    if (negatives === null) throw invalidParameter("negativePrompt", "a string or an array of strings", negative, "type");
    negatives.forEach((p, i) => {
      if (typeof p !== "string") throw invalidParameter(`negativePrompt[${i}]`, "a string", p, "type");
    });
    if (prompts && negatives.length !== 1 && negatives.length !== prompts.length) {
      throw new RangeError(`negativePrompt has ${negatives.length} entries but prompt has ${prompts.length}: pass one, or one per prompt`);
    }
  }
  return { prompts, negatives };
}
