/** LoRA files: parsing and key mapping (parse.ts, read.ts), merging into loaded weights (merge.ts). */
export { analyzeLora, parseLora } from "./parse.ts";
export { readLora } from "./read.ts";
export { fuseLora, FusedLora, type FuseLoraOptions, type ParameterLookup } from "./merge.ts";
export type { LoraAnalysis, LoraComponent, LoraFormat, LoraParameterNames, LoraPatch, ParseLoraOptions, SkippedLoraEntry } from "./types.ts";
