/** What parsing a LoRA file produces: one low-rank update per targeted weight. */
import type { SafetensorsEntry } from "../safetensors.ts";

/** The model a LoRA update targets. */
export type LoraComponent = "unet" | "text_encoder";

/** The key layouts `parseLora` understands. */
export type LoraFormat =
  /** `unet.<module>.lora_A.weight` / `lora_B.weight` (diffusers >= 0.22 with PEFT, raw PEFT). */
  | "peft"
  /** `<module>.processor.to_q_lora.down.weight`, `unet.<module>.lora.down.weight` (diffusers < 0.22). */
  | "diffusers-old"
  /** `lora_unet_<module_with_underscores>.lora_down.weight` (kohya sd-scripts and most trainers). */
  | "kohya";

/**
 * One weight update: `W += userScale * scale * reshape(up @ down, W.shape)`, with `up`
 * flattened to [out, rank] and `down` to [rank, in * kernel...].
 */
export interface LoraPatch {
  component: LoraComponent;
  /** Full parameter name in the exported module, e.g. `...attn1.to_q.weight`. */
  parameter: string;
  /** The [rank, in(, kernel...)] factor (lora_A / lora_down). */
  down: SafetensorsEntry;
  /** The [out, rank(, 1...)] factor (lora_B / lora_up). */
  up: SafetensorsEntry;
  /** alpha / rank when the file gives an alpha, else 1. */
  scale: number;
  /** "conv" when the factors carry kernel dimensions (LoCon, conv LoRA), else "linear". */
  kind: "linear" | "conv";
  rank: number;
  /** The alpha the scale came from, when the file gave one. */
  alpha?: number;
  format: LoraFormat;
  /** The file's keys this patch was built from (for messages). */
  keys: { down: string; up: string; alpha?: string };
}

/** A part of the file that was not turned into a patch (only with `strict: false`). */
export interface SkippedLoraEntry {
  /** The file keys involved. */
  keys: string[];
  reason: string;
}

/** Parameter names of the exported modules, as their `namedParameters()` lists them. */
export interface LoraParameterNames {
  unet?: readonly string[];
  text_encoder?: readonly string[];
}

export interface ParseLoraOptions {
  /**
   * - `true`: any key that cannot be applied (unknown target module, unsupported LyCORIS
   *   variant, a down without its up) is an error naming it.
   * - `false`: such keys are collected in `skipped` and the rest is applied.
   *
   * Defaults to `true`: a LoRA silently applied by halves looks like a bad LoRA, not a bug.
   */
  strict?: boolean;
  /** Where the file came from, for messages. Defaults to "LoRA file". */
  source?: string;
}

export interface LoraAnalysis {
  /** Every key layout seen in the file (a file may mix them). */
  formats: LoraFormat[];
  patches: LoraPatch[];
  skipped: SkippedLoraEntry[];
}
