/**
 * Reads one LoRA file key: which component it names (if its prefix says), which module, and
 * which part of the update it holds (down / up / alpha). Nothing here knows the model; module
 * names are checked against the real parameter list in resolve.ts.
 */
import type { LoraComponent, LoraFormat } from "./types.ts";

export type LoraRole = "down" | "up" | "alpha";

export interface LoraKey {
  kind: "lora";
  /** Set when the key's prefix names the component (`unet.`, `lora_te_` ...). */
  component?: LoraComponent;
  /** The module path as written: dotted, or with underscores for kohya names. */
  module: string;
  /** Kohya `lora_unet_` / `lora_te_` names: every dot became an underscore. */
  underscored: boolean;
  /** Dotted module names to try, best first (old attn-procs spell `to_out` for `to_out.0`). */
  candidates: string[];
  role: LoraRole;
  /** Undefined for `.alpha`, which every format writes the same way. */
  format?: LoraFormat;
}

export interface UnsupportedKey {
  kind: "unsupported";
  reason: string;
}

export interface UnknownKey {
  kind: "unknown";
}

export type ClassifiedKey = LoraKey | UnsupportedKey | UnknownKey;

// Recognised but not plain LoRA: merging them needs other math, so they are refused by name.
const UNSUPPORTED: readonly [RegExp, string][] = [
  [/^lora_te2_/, "targets a second text encoder (SDXL); ModelScope models have one"],
  [/\.hada_(w[12]_[ab]|t[12])$/, "is LoHa (LyCORIS), not LoRA"],
  [/\.lokr_(w[12](_[ab])?|t2)$/, "is LoKr (LyCORIS), not LoRA"],
  [/\.lora_mid\.weight$/, "is LoCon with CP decomposition (lora_mid), not supported"],
  [/lora_magnitude_vector|\.dora_scale$/, "is DoRA (a magnitude vector), not supported"],
  [/\.lora_[AB](\.[^.]+)?\.bias$|\.lora_(up|down)\.bias$/, "is a LoRA with a bias term, not supported"],
  [/\.diff(_b)?$/, "is a full weight difference (.diff), not a low-rank update"],
  [/lora_embedding_[AB]/, "is an embedding LoRA, not supported"],
];

// Component prefixes of dotted names. `base_model.model.` is what a raw PEFT save adds and says
// nothing about the component.
const DOTTED_PREFIXES: readonly [string, LoraComponent | undefined][] = [
  ["unet.", "unet"],
  ["text_encoder.", "text_encoder"],
  ["base_model.model.", undefined],
];

// kohya: lora_unet_<module>, lora_te_<module> (lora_te1_ in SDXL files).
const KOHYA_PREFIX = /^lora_(unet|te1?)_(.+)$/;

interface SuffixRule {
  pattern: RegExp;
  role: LoraRole;
  format?: LoraFormat;
}

const SUFFIX_RULES: readonly SuffixRule[] = [
  // PEFT, optionally with the adapter name kept in the key (lora_A.default.weight).
  { pattern: /^(.+)\.lora_A(?:\.[^.]+)?\.weight$/, role: "down", format: "peft" },
  { pattern: /^(.+)\.lora_B(?:\.[^.]+)?\.weight$/, role: "up", format: "peft" },
  // diffusers 0.20-0.21 LoRACompatibleLinear/Conv and the old text-encoder monkey patch.
  { pattern: /^(.+)\.(?:lora|lora_linear_layer)\.down\.weight$/, role: "down", format: "diffusers-old" },
  { pattern: /^(.+)\.(?:lora|lora_linear_layer)\.up\.weight$/, role: "up", format: "diffusers-old" },
  // kohya layout, also found with dotted module names.
  { pattern: /^(.+)\.lora_down\.weight$/, role: "down", format: "kohya" },
  { pattern: /^(.+)\.lora_up\.weight$/, role: "up", format: "kohya" },
  { pattern: /^(.+)\.alpha$/, role: "alpha" },
];

// diffusers < 0.20 attention processors: <attn>.processor.to_q_lora.down.weight.
const ATTN_PROC = /^(.+?)(?:\.processor)?\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;
// The UNet's attention calls them to_q ... to_out.0; CLIP's calls them q_proj ... out_proj.
const ATTN_PROC_TARGETS: Record<string, [string, string]> = {
  to_q: ["to_q", "q_proj"],
  to_k: ["to_k", "k_proj"],
  to_v: ["to_v", "v_proj"],
  to_out: ["to_out.0", "out_proj"],
};

export function classifyKey(key: string): ClassifiedKey {
  for (const [pattern, reason] of UNSUPPORTED) if (pattern.test(key)) return { kind: "unsupported", reason };

  let component: LoraComponent | undefined;
  let rest = key;
  let underscored = false;
  const kohya = KOHYA_PREFIX.exec(key);
  if (kohya) {
    component = kohya[1] === "unet" ? "unet" : "text_encoder";
    rest = kohya[2];
    underscored = true;
  } else {
    // Prefixes can stack (unet.base_model.model.<module>), so strip until none is left.
    for (let stripped = true; stripped; ) {
      stripped = false;
      for (const [prefix, comp] of DOTTED_PREFIXES) {
        if (rest.startsWith(prefix)) {
          rest = rest.slice(prefix.length);
          component ??= comp;
          stripped = true;
        }
      }
    }
  }

  const attn = underscored ? null : ATTN_PROC.exec(rest);
  if (attn) {
    const [, base, op, part] = attn;
    return {
      kind: "lora",
      component,
      module: `${base}.${op}`,
      underscored,
      candidates: ATTN_PROC_TARGETS[op].map((target) => `${base}.${target}`),
      role: part as LoraRole,
      format: "diffusers-old",
    };
  }
  for (const rule of SUFFIX_RULES) {
    const m = rule.pattern.exec(rest);
    if (!m) continue;
    return { kind: "lora", component, module: m[1], underscored, candidates: underscored ? [] : [m[1]], role: rule.role, format: underscored ? "kohya" : rule.format };
  }
  return { kind: "unknown" };
}
