/** Options and results of CLIPTokenizer.encode / encodeBatch, and their validation. */
import { expectBoolean, expectInt, invalidParameter } from "../validate.ts";
import { wrongType } from "./checks.ts";

/** How `encode` pads and truncates. The defaults are what diffusers' encode_prompt passes. */
export interface EncodeOptions {
  /**
   * - `"max_length"`: pad every sequence to `maxLength`.
   * - `"longest"` (or `true`): pad a batch to its longest sequence; a single text is not padded.
   * - `false`: no padding.
   *
   * Defaults to `"max_length"` (transformers defaults to `false`; diffusers always pads to 77).
   */
  padding?: "max_length" | "longest" | boolean;
  /**
   * Length limit in tokens, bos and eos included, for truncation and `"max_length"` padding.
   * At least 2. Defaults to the folder's `model_max_length` (77 for CLIP).
   */
  maxLength?: number;
  /**
   * Cut sequences longer than `maxLength`, keeping bos, the first `maxLength - 2` tokens and eos
   * (or the last ones when the folder says `truncation_side: "left"`). Defaults to `true`.
   */
  truncation?: boolean;
}

/** One tokenized text. */
export interface Encoding {
  /** Token ids: bos, the text, eos, then padding. */
  inputIds: number[];
  /** 1 for real tokens (bos and eos included), 0 for padding. */
  attentionMask: number[];
  /** Whether truncation removed tokens. */
  truncated: boolean;
  /** The ids truncation removed, in text order (empty when nothing was removed). */
  overflowIds: number[];
  /** The removed text as `decode` writes it (diffusers logs it in its truncation warning). */
  overflowText: string;
}

export interface ResolvedEncodeOptions {
  padding: "max_length" | "longest" | false;
  maxLength: number;
  truncation: boolean;
}

export function resolveEncodeOptions(options: unknown, modelMaxLength: number): ResolvedEncodeOptions {
  if (options === undefined) return { padding: "max_length", maxLength: modelMaxLength, truncation: true };
  if (options === null || typeof options !== "object") throw wrongType("options", "an object", options);
  const { padding = "max_length", maxLength = modelMaxLength, truncation = true } = options as EncodeOptions;
  let resolvedPadding: ResolvedEncodeOptions["padding"];
  if (padding === true || padding === "longest") resolvedPadding = "longest";
  else if (padding === false || padding === "max_length") resolvedPadding = padding;
  else throw invalidParameter("options.padding", `"max_length", "longest", true or false`, padding, typeof padding === "string" ? "range" : "type");
  return {
    padding: resolvedPadding,
    // Room for bos and eos is the least a sequence needs.
    maxLength: expectInt(maxLength, "options.maxLength", { min: 2 }),
    truncation: expectBoolean(truncation, "options.truncation"),
  };
}
