/**
 * Input checks of generate() that need the loaded model (the option checks that do not are in
 * options.ts). They run before any model does, so a wrong tensor is named instead of failing
 * inside the UNet with a TorchScript traceback.
 */
import type { UNet3DConditionModel } from "../models/unet.ts";
import type { Tensor } from "../tensor.ts";

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
