/** Prompt encoding as diffusers' encode_prompt. */
import type { CLIPTokenizer } from "../tokenizer/index.ts";
import type { CLIPTextModel } from "../models/text-encoder.ts";
import { Tensor, disposeAll } from "../tensor.ts";
import { normalisePrompts } from "./options.ts";

export interface EncodePromptOptions {
  prompt?: string | string[];
  negativePrompt?: string | string[];
  promptEmbeds?: Tensor;
  negativePromptEmbeds?: Tensor;
  numVideosPerPrompt?: number;
  doClassifierFreeGuidance: boolean;
  clipSkip?: number;
}

async function encodeTexts(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, texts: string[], clipSkip: number): Promise<Tensor> {
  const ids = texts.map((text) => {
    const enc = tokenizer.encode(text, { padding: "max_length", maxLength: tokenizer.modelMaxLength, truncation: true });
    if (enc.truncated) {
      process.emitWarning(`The prompt was cut to ${tokenizer.modelMaxLength} tokens (CLIP's limit); this part is ignored: ${JSON.stringify(enc.overflowText)}`, "TorchvidWarning");
    }
    return enc.inputIds;
  });
  return textEncoder.encode(ids, clipSkip);
}

/**
 * Padded to 77 tokens, no attention mask, repeated per video; with guidance, the negative (or
 * empty) prompts come first: [uncond x B, cond x B]. The text encoder must be on its device.
 */
export async function encodePrompt(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, options: EncodePromptOptions): Promise<Tensor> {
  const { prompts, negatives } = normalisePrompts(options.prompt, options.negativePrompt, options.promptEmbeds !== undefined);
  const perPrompt = options.numVideosPerPrompt ?? 1;
  const clipSkip = options.clipSkip ?? 0;
  const owned: Tensor[] = [];
  try {
    let cond: Tensor;
    if (options.promptEmbeds) {
      cond = options.promptEmbeds;
    } else {
      cond = await encodeTexts(tokenizer, textEncoder, prompts!, clipSkip);
      owned.push(cond);
    }
    const batch = cond.shape[0];
    let embeds = cond;
    if (options.doClassifierFreeGuidance) {
      let uncond: Tensor;
      if (options.negativePromptEmbeds) {
        uncond = options.negativePromptEmbeds;
        if (uncond.shape.join() !== cond.shape.join()) {
          throw new RangeError(`negativePromptEmbeds has shape [${uncond.shape}] but promptEmbeds has [${cond.shape}]: they must match`);
        }
      } else {
        const texts = negatives === null ? Array(batch).fill("") : negatives.length === 1 ? Array(batch).fill(negatives[0]) : negatives;
        uncond = await encodeTexts(tokenizer, textEncoder, texts, clipSkip);
        owned.push(uncond);
      }
      embeds = Tensor.cat([uncond, cond], 0);
      owned.push(embeds);
    }
    if (perPrompt > 1) {
      // diffusers repeats each prompt's embedding n times in a row ([a, a, b, b]).
      const halves = options.doClassifierFreeGuidance ? embeds.chunk(2, 0) : [embeds];
      const repeated = halves.map((h) => h.repeatInterleave(perPrompt, 0));
      const out = repeated.length === 2 ? Tensor.cat(repeated, 0) : repeated[0];
      if (repeated.length === 2) disposeAll(repeated);
      if (halves.length === 2) disposeAll(halves);
      return out;
    }
    if (embeds === options.promptEmbeds) return embeds.clone();
    owned.splice(owned.indexOf(embeds), 1);
    return embeds;
  } finally {
    disposeAll(owned);
  }
}
