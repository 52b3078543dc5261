/**
 * The scale of a LoRA update, alpha / rank, as diffusers/PEFT and kohya compute it. Alpha comes
 * from, in order: the module's `.alpha` tensor (kohya, diffusers network alphas), the PEFT
 * adapter config diffusers stores in the file's metadata, or nowhere (alpha = rank, scale 1).
 */
import { ModelFormatError } from "../errors.ts";
import { toNumbers, type SafetensorsEntry } from "../safetensors.ts";
import type { LoraComponent } from "./types.ts";

/** The metadata key diffusers (>= 0.34) writes the PEFT LoraConfig of each component under. */
export const ADAPTER_METADATA_KEY = "lora_adapter_metadata";

interface PeftConfig {
  alpha?: number;
  alphaPattern: Record<string, number>;
  useRslora: boolean;
}

export class LoraScales {
  readonly #configs = new Map<LoraComponent, PeftConfig>();

  constructor(metadata: Record<string, string>, source: string) {
    const raw = metadata[ADAPTER_METADATA_KEY];
    if (raw === undefined) return;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      throw new ModelFormatError(`${source}: metadata "${ADAPTER_METADATA_KEY}" is not valid JSON (${(err as Error).message})`, { cause: err });
    }
    for (const component of ["unet", "text_encoder"] as const) {
      const alpha = parsed[`${component}.lora_alpha`];
      const pattern = parsed[`${component}.alpha_pattern`];
      if (alpha === undefined && pattern === undefined) continue;
      this.#configs.set(component, {
        alpha: typeof alpha === "number" ? alpha : undefined,
        alphaPattern: pattern && typeof pattern === "object" ? (pattern as Record<string, number>) : {},
        useRslora: parsed[`${component}.use_rslora`] === true,
      });
    }
  }

  /** alpha / rank for one module, and the alpha it used (undefined: none given, scale 1). */
  scaleOf(component: LoraComponent, module: string, rank: number, alphaEntry: SafetensorsEntry | undefined, alphaKey: string | undefined): { scale: number; alpha?: number } {
    if (alphaEntry !== undefined) {
      const values = toAlpha(alphaEntry, alphaKey ?? module);
      return { scale: values / rank, alpha: values };
    }
    const config = this.#configs.get(component);
    if (config === undefined) return { scale: 1 };
    // PEFT matches a pattern key against the end of the module path, at a dot boundary.
    const patternKey = Object.keys(config.alphaPattern).find((k) => module === k || module.endsWith(`.${k}`));
    const alpha = patternKey !== undefined ? config.alphaPattern[patternKey] : config.alpha;
    if (alpha === undefined) return { scale: 1 };
    return { scale: alpha / (config.useRslora ? Math.sqrt(rank) : rank), alpha };
  }
}

function toAlpha(entry: SafetensorsEntry, key: string): number {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  let value: number | undefined;
  try {
    // Usually a float scalar; some tools write an integer one.
    value = count === 1 ? toNumbers(entry)[0] : undefined;
  } catch {
    value = undefined;
  }
  if (value === undefined || !Number.isFinite(value)) {
    throw new ModelFormatError(`LoRA alpha ${key} must be one finite number, not a ${entry.dtype} tensor of shape [${entry.shape.join(", ")}]`);
  }
  return value;
}
