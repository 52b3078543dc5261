/**
 * The option checks every pipeline shares, run before any model does; checkEmbedShapes needs the
 * loaded UNet, so a wrong tensor is named instead of failing inside it with a TorchScript traceback.
 */
import { AbortError } from "../errors.ts";
import type { UNet3DConditionModel } from "../models/unet.ts";
import { Tensor } from "../tensor.ts";
import { expectInt, expectNumber, expectOneOf, invalidParameter } from "../validate.ts";
import { normalisePrompts, type GenerateOptions, type OutputType } from "./options.ts";

export interface CommonOptions {
  numInferenceSteps: number;
  guidanceScale: number;
  eta: number;
  numVideosPerPrompt: number;
  outputType: OutputType;
  clipSkip: number;
  batch: number;
}

/** Checks the options every pipeline shares; returns them with defaults applied. */
export function checkCommonOptions(options: GenerateOptions, numHiddenLayers: number): CommonOptions {
  const numInferenceSteps = expectInt(options.numInferenceSteps ?? 50, "numInferenceSteps", { min: 1 });
  const guidanceScale = expectNumber(options.guidanceScale ?? 9.0, "guidanceScale");
  const eta = expectNumber(options.eta ?? 0, "eta", { min: 0 });
  const numVideosPerPrompt = expectInt(options.numVideosPerPrompt ?? 1, "numVideosPerPrompt", { min: 1 });
  const outputType = expectOneOf(options.outputType ?? "uint8", "outputType", ["uint8", "float", "latent"] as const);
  let clipSkip = 0;
  if (options.clipSkip !== undefined && options.clipSkip !== null) {
    clipSkip = expectInt(options.clipSkip, "clipSkip", { min: 0, max: numHiddenLayers - 1 });
  }
  if (options.onStep !== undefined && typeof options.onStep !== "function") throw invalidParameter("onStep", "a function", options.onStep, "type");
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidParameter("signal", "an AbortSignal", options.signal, "type");
  for (const key of ["latents", "promptEmbeds", "negativePromptEmbeds"] as const) {
    if (options[key] !== undefined && !(options[key] instanceof Tensor)) throw invalidParameter(key, "a Tensor", options[key], "type");
  }
  const { prompts } = normalisePrompts(options.prompt, options.negativePrompt, options.promptEmbeds !== undefined);
  const batch = (prompts?.length ?? options.promptEmbeds!.shape[0]) * numVideosPerPrompt;
  return { numInferenceSteps, guidanceScale, eta, numVideosPerPrompt, outputType, clipSkip, batch };
}

/** Checks a pixel size against the VAE (and the latent grid). */
export function checkSize(value: number, name: "height" | "width", vaeScaleFactor: number): number {
  const n = expectInt(value, name, { min: 8 });
  if (n % 8 !== 0 || n % vaeScaleFactor !== 0) {
    const step = Math.max(8, vaeScaleFactor);
    const below = Math.floor(n / step) * step;
    throw new RangeError(`${name} must be divisible by ${step} but received ${n}: try ${below >= step ? `${below} or ` : ""}${below + step}`);
  }
  return n;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("Generation aborted", { cause: signal.reason });
}

/** promptEmbeds / negativePromptEmbeds must be [B, tokens, cross_attention_dim] of this model's UNet. */
export function checkEmbedShapes(options: { promptEmbeds?: Tensor; negativePromptEmbeds?: Tensor }, unet: UNet3DConditionModel): void {
  const width = unet.config.cross_attention_dim;
  for (const name of ["promptEmbeds", "negativePromptEmbeds"] as const) {
    const t = options[name];
    if (t === undefined) continue;
    const shape = t.shape;
    const fits = shape.length === 3 && shape[0] >= 1 && shape[1] >= 1 && (typeof width !== "number" || shape[2] === width);
    if (!fits) {
      throw new RangeError(
        `${name} has shape [${shape.join(", ")}] but this model's UNet (${unet.module.path}) takes [B, 77, ${String(width)}] ` +
          `(cross_attention_dim in configs/unet.json): make the embeddings with this model's text encoder ` +
          `(await pipe.encodePrompt({ prompt, doClassifierFreeGuidance: false })) or pass prompt instead`,
      );
    }
  }
}
