/** CLIP BPE tokenizer (pure TypeScript). */
export { CLIPTokenizer, type DecodeOptions } from "./clip-tokenizer.ts";
export type { EncodeOptions, Encoding } from "./options.ts";
