/**
 * Merges parsed LoRA updates into loaded weights on their device, and takes them out again:
 * `W += userScale * scale * reshape(up @ down, W.shape)`. The product is formed in float32 and
 * cast once to the weight's dtype (diffusers does the same for fp16 on the CPU; on CUDA it
 * multiplies in fp16, which is less exact). Unfusing writes back a copy of the original
 * weights kept on the CPU, so it restores them bit for bit instead of subtracting in fp16.
 */
import { TorchvidError } from "../errors.ts";
import { toFloat32 } from "../safetensors.ts";
import { Tensor, disposeAll, type Device } from "../tensor.ts";
import { expectNumber, invalidParameter } from "../validate.ts";
import type { LoraComponent, LoraPatch } from "./types.ts";

/**
 * Returns a tensor aliasing a loaded module's parameter (edits change the module), e.g.
 * `(component, name) => new Tensor(modules[component].parameter(name))`. Called again at
 * unfuse time, so it may follow a module that moved between devices in the meantime.
 */
export type ParameterLookup = (component: LoraComponent, parameter: string) => Tensor;

export interface FuseLoraOptions {
  /**
   * Strength of the LoRA, multiplying every update on top of the file's alpha / rank
   * (diffusers' `lora_scale`). 0 leaves the weights as they are. Defaults to 1.
   */
  scale?: number;
}

interface Backup {
  component: LoraComponent;
  parameter: string;
  /** The untouched weight, on the CPU so the accelerator keeps its memory. */
  original: Tensor;
}

/**
 * A LoRA merged into loaded weights; `unfuse()` restores them exactly. With several LoRAs fused
 * one after another, unfuse them in reverse order: each restores the weights it found.
 */
export class FusedLora {
  readonly #lookup: ParameterLookup;
  #backups: Backup[];

  /** @internal use `fuseLora`. */
  constructor(lookup: ParameterLookup, backups: Backup[]) {
    this.#lookup = lookup;
    this.#backups = backups;
  }

  /** The parameters this LoRA changed, as `component:name`. */
  get parameters(): string[] {
    return this.#backups.map((b) => `${b.component}:${b.parameter}`);
  }

  get fused(): boolean {
    return this.#backups.length > 0;
  }

  /** Writes the original weights back (bit for bit) and frees the copies. A no-op the second time. */
  unfuse(): void {
    // Newest first, so a parameter patched twice ends at its very first value.
    for (const backup of [...this.#backups].reverse()) {
      this.#lookup(backup.component, backup.parameter).copyFrom(backup.original);
    }
    this.dispose();
  }

  /** Frees the copies of the original weights; the LoRA stays merged for good. */
  dispose(): void {
    disposeAll(this.#backups.map((b) => b.original));
    this.#backups = [];
  }
}

/** Merges `patches` into the weights `lookup` returns. On failure, every weight is restored first. */
export async function fuseLora(patches: readonly LoraPatch[], lookup: ParameterLookup, options: FuseLoraOptions = {}): Promise<FusedLora> {
  if (!Array.isArray(patches)) throw invalidParameter("patches", "an array of LoRA patches (from parseLora)", patches, "type");
  if (typeof lookup !== "function") throw invalidParameter("lookup", "a function (component, parameter) => Tensor", lookup, "type");
  const userScale = options.scale === undefined ? 1 : expectNumber(options.scale, "options.scale");
  const backups: Backup[] = [];
  try {
    for (const patch of patches) {
      const weight = lookup(patch.component, patch.parameter);
      const original = weight.device === "cpu" ? weight.clone() : await weight.toDevice("cpu");
      backups.push({ component: patch.component, parameter: patch.parameter, original });
      applyPatch(weight, patch, userScale);
    }
  } catch (err) {
    new FusedLora(lookup, backups).unfuse();
    throw err;
  }
  return new FusedLora(lookup, backups);
}

function applyPatch(weight: Tensor, patch: LoraPatch, userScale: number): void {
  const [out, rank] = patch.up.shape;
  const inner = patch.down.shape.slice(1).reduce((a, b) => a * b, 1);
  if (weight.shape[0] !== out || weight.numel !== out * inner) {
    throw new TorchvidError(
      "ERR_TORCHVID_SHAPE",
      `LoRA update for ${patch.component} ${patch.parameter} is [${out}, ${patch.down.shape.slice(1).join(", ")}] (up [${patch.up.shape.join(", ")}], ` +
        `down [${patch.down.shape.join(", ")}]) but the weight is [${weight.shape.join(", ")}]: the LoRA is made for another model size`,
    );
  }
  const device = weight.device as Device;
  const up = Tensor.from(toFloat32(patch.up), [out, rank], { device });
  const down = Tensor.from(toFloat32(patch.down), [rank, inner], { device });
  const product = up.matmul(down);
  const delta = product.reshape(weight.shape);
  const factor = patch.scale * userScale;
  try {
    if (weight.dtype === "float32") {
      weight.addInPlace(delta, factor);
    } else {
      // Scale in float32, then round once to the weight's dtype.
      const scaled = delta.mul(factor);
      const cast = scaled.to(weight.dtype);
      weight.addInPlace(cast);
      disposeAll(scaled, cast);
    }
  } finally {
    disposeAll(up, down, product, delta);
  }
}
