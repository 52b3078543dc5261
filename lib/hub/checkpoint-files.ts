/**
 * Which files of a diffusers text-to-video repo the converter needs (tools/convert reads the same
 * list): configs, tokenizer, scheduler, and ONE weight file (or sharded set) per model component,
 * in diffusers' order of preference, for the requested variant only. A repo holding fp32, fp16,
 * .bin and .safetensors copies of every weight downloads one of them.
 */

export const REQUIRED_FILES = [
  "scheduler/scheduler_config.json",
  "tokenizer/vocab.json",
  "tokenizer/merges.txt",
  "unet/config.json",
  "vae/config.json",
  "text_encoder/config.json",
] as const;

/** Used when the repo has them; the converter does without. */
export const OPTIONAL_FILES = ["model_index.json", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"] as const;

const WEIGHT_NAMES: Record<string, [folder: string, safetensors: string, bin: string]> = {
  unet: ["unet", "diffusion_pytorch_model", "diffusion_pytorch_model"],
  vae: ["vae", "diffusion_pytorch_model", "diffusion_pytorch_model"],
  text_encoder: ["text_encoder", "model", "pytorch_model"],
};

/** diffusers' `_add_variant`: model.safetensors + fp16 -> model.fp16.safetensors. */
function addVariant(filename: string, variant?: string): string {
  if (!variant) return filename;
  const parts = filename.split(".");
  return [...parts.slice(0, -1), variant, parts.at(-1)].join(".");
}

/** The weight files a component may have, best first (tools/convert/checkpoint.py find_weights). */
export function weightCandidates(component: string, variant?: string): string[] {
  const [folder, st, bin] = WEIGHT_NAMES[component]!;
  return [`${st}.safetensors`, `${st}.safetensors.index.json`, `${bin}.bin`, `${bin}.bin.index.json`].map((n) => `${folder}/${addVariant(n, variant)}`);
}

export interface CheckpointPlan {
  /** Files to download now (configs and weights or weight indexes). */
  files: string[];
  /** Weight indexes among `files`: their shards are listed inside and fetched after them. */
  indexes: string[];
}

/** A file the repo lacks; `what` says which part of the checkpoint needed it. */
export class MissingCheckpointFile extends Error {
  constructor(
    readonly path: string,
    readonly what: string,
    readonly hint: string,
  ) {
    super(`${what}: ${path} is not in the repo${hint ? ` (${hint})` : ""}`);
  }
}

/** Picks the files to fetch from the repo's file list, or throws MissingCheckpointFile. */
export function planCheckpointFiles(available: ReadonlySet<string>, variant?: string): CheckpointPlan {
  for (const f of REQUIRED_FILES) if (!available.has(f)) throw new MissingCheckpointFile(f, "not a diffusers text-to-video checkpoint", "");
  const files: string[] = [...REQUIRED_FILES, ...OPTIONAL_FILES.filter((f) => available.has(f))];
  const indexes: string[] = [];
  for (const component of Object.keys(WEIGHT_NAMES)) {
    const candidates = weightCandidates(component, variant);
    const found = candidates.find((c) => available.has(c));
    if (!found) {
      const other = variant ? weightCandidates(component).find((c) => available.has(c)) : [...available].find((f) => f.startsWith(`${component}/`) && f.includes(".fp16."));
      const hint = variant
        ? other
          ? `the repo has no "${variant}" variant of ${component}; leave out the variant to use ${other}`
          : `looked for ${candidates.join(", ")}`
        : other
          ? `only an fp16 variant exists (${other}): pass variant "fp16" (--variant fp16)`
          : `looked for ${candidates.join(", ")}`;
      throw new MissingCheckpointFile(candidates[0]!, `${component} weights`, hint);
    }
    files.push(found);
    if (found.endsWith(".index.json")) indexes.push(found);
  }
  return { files, indexes };
}

/** The shard files a weight index names (paths relative to the repo). */
export function shardsOfIndex(indexPath: string, index: unknown): string[] {
  const map = (index as { weight_map?: Record<string, string> })?.weight_map;
  const folder = indexPath.split("/").slice(0, -1).join("/");
  return [...new Set(Object.values(map ?? {}))].sort().map((s) => `${folder}/${s}`);
}
