/**
 * LoRA file -> list of weight updates for our exported modules. Steps:
 * 1. classify every key (keys.ts) and group the down/up/alpha keys of each module;
 * 2. resolve each module against the real parameter names (resolve.ts);
 * 3. check the factors' shapes and work out alpha / rank (scale.ts).
 * Anything that cannot be applied is an error, or, with `strict: false`, a `skipped` entry.
 */
import { ModelFormatError } from "../errors.ts";
import type { SafetensorsEntry, SafetensorsFile } from "../safetensors.ts";
import { expectBoolean, expectString, invalidParameter } from "../validate.ts";
import { classifyKey, type LoraKey } from "./keys.ts";
import { ParameterIndex } from "./resolve.ts";
import { LoraScales } from "./scale.ts";
import type { LoraAnalysis, LoraComponent, LoraFormat, LoraParameterNames, LoraPatch, ParseLoraOptions, SkippedLoraEntry } from "./types.ts";

const COMPONENTS: readonly LoraComponent[] = ["unet", "text_encoder"];
const FLOAT_DTYPES = new Set(["F16", "BF16", "F32", "F64"]);
// Enough of a list to recognise the problem without flooding the terminal.
const LISTED = 8;

interface Part {
  key: string;
  entry: SafetensorsEntry;
}

interface Group {
  component?: LoraComponent;
  module: string;
  underscored: boolean;
  candidates: string[];
  format?: LoraFormat;
  down?: Part;
  up?: Part;
  alpha?: Part;
  /** Extra keys that claimed a part already taken (e.g. lora_A.weight and lora_A.default.weight). */
  duplicates: string[];
}

/**
 * Maps a LoRA file onto the parameters of our modules. Throws a ModelFormatError when the file
 * is in no known format, or (unless `strict: false`) when any part of it cannot be applied.
 */
export function parseLora(file: SafetensorsFile, parameterNames: LoraParameterNames, options: ParseLoraOptions = {}): LoraPatch[] {
  return analyzeLora(file, parameterNames, options).patches;
}

/** Like `parseLora`, also saying which formats the file uses and what was skipped. */
export function analyzeLora(file: SafetensorsFile, parameterNames: LoraParameterNames, options: ParseLoraOptions = {}): LoraAnalysis {
  if (file === null || typeof file !== "object" || !(file.tensors instanceof Map)) {
    throw invalidParameter("file", "a SafetensorsFile (from readSafetensors)", file, "type");
  }
  const indexes = buildIndexes(parameterNames);
  if (options === null || typeof options !== "object") throw invalidParameter("options", "an object", options, "type");
  const strict = options.strict === undefined ? true : expectBoolean(options.strict, "options.strict");
  const source = options.source === undefined ? "LoRA file" : expectString(options.source, "options.source");

  const { groups, skipped } = groupKeys(file);
  if (groups.length === 0) throw unknownFormat(file, skipped, source);

  const scales = new LoraScales(file.metadata ?? {}, source);
  const patches: LoraPatch[] = [];
  const targets = new Map<string, string>();
  let missingTargets = 0;
  for (const group of groups) {
    const keys = [group.down?.key, group.up?.key, group.alpha?.key].filter((k): k is string => k !== undefined);
    const result = toPatch(group, indexes, scales);
    if ("reason" in result) {
      skipped.push({ keys: [...keys, ...group.duplicates], reason: result.reason });
      if (result.missing) missingTargets++;
      continue;
    }
    const target = `${result.component}:${result.parameter}`;
    const earlier = targets.get(target);
    if (earlier !== undefined) {
      skipped.push({ keys, reason: `targets ${result.component} ${result.parameter}, which ${earlier} already targets` });
      continue;
    }
    if (group.duplicates.length) skipped.push({ keys: group.duplicates, reason: `repeat a factor of ${group.module} that another key already gives` });
    targets.set(target, keys[0]);
    patches.push(result);
  }

  if (strict && skipped.length > 0) throw cannotApply(skipped, source, patches.length, missingTargets > 0);
  const formats = [...new Set(groups.map((g) => g.format).filter((f): f is LoraFormat => f !== undefined))];
  return { formats, patches, skipped };
}

function buildIndexes(parameterNames: LoraParameterNames): Record<LoraComponent, ParameterIndex> {
  if (parameterNames === null || typeof parameterNames !== "object") {
    throw invalidParameter("parameterNames", "an object { unet: string[], text_encoder: string[] }", parameterNames, "type");
  }
  const index = (component: LoraComponent) => {
    const names = parameterNames[component] ?? [];
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      throw invalidParameter(`parameterNames.${component}`, "an array of parameter names", names, "type");
    }
    return new ParameterIndex(component, names);
  };
  return { unet: index("unet"), text_encoder: index("text_encoder") };
}

function groupKeys(file: SafetensorsFile): { groups: Group[]; skipped: SkippedLoraEntry[] } {
  const byModule = new Map<string, Group>();
  const skipped: SkippedLoraEntry[] = [];
  const unknown: string[] = [];
  for (const [key, entry] of file.tensors) {
    const info = classifyKey(key);
    if (info.kind === "unknown") unknown.push(key);
    else if (info.kind === "unsupported") skipped.push({ keys: [key], reason: `${key} ${info.reason}` });
    else addToGroup(byModule, info, key, entry);
  }
  if (unknown.length) skipped.push({ keys: unknown, reason: `${listOf(unknown)} ${unknown.length === 1 ? "is not a LoRA key" : "are not LoRA keys"} in a known format` });

  const groups: Group[] = [];
  for (const group of byModule.values()) {
    // An alpha beside LyCORIS factors belongs to that (already reported) module: not a new problem.
    const alphaOnly = group.alpha && !group.down && !group.up;
    const base = group.alpha?.key.slice(0, -".alpha".length);
    const owner = alphaOnly ? skipped.find((s) => s.keys.some((k) => k.startsWith(`${base}.`))) : undefined;
    if (owner) owner.keys.push(group.alpha!.key);
    else groups.push(group);
  }
  // A file with nothing but alphas and unsupported keys has no LoRA to speak of.
  return { groups: groups.some((g) => g.down || g.up) ? groups : [], skipped };
}

function addToGroup(byModule: Map<string, Group>, info: LoraKey, key: string, entry: SafetensorsEntry): void {
  const id = `${info.component ?? "*"}|${info.underscored ? "_" : "."}|${info.module}`;
  let group = byModule.get(id);
  if (!group) {
    group = { component: info.component, module: info.module, underscored: info.underscored, candidates: info.candidates, duplicates: [] };
    byModule.set(id, group);
  }
  // `.alpha` carries no format; a module's down/up keys decide it.
  if (info.format !== undefined) group.format ??= info.format;
  if (group[info.role] !== undefined) group.duplicates.push(key);
  else group[info.role] = { key, entry };
}

interface Problem {
  reason: string;
  /** The module is not in the model (rather than malformed): the LoRA may be for another model. */
  missing?: boolean;
}

/** A patch, or why the group cannot be one. */
function toPatch(group: Group, indexes: Record<LoraComponent, ParameterIndex>, scales: LoraScales): LoraPatch | Problem {
  const { down, up, alpha } = group;
  if (!down || !up) {
    const have = down ? `a down factor (${down.key})` : up ? `an up factor (${up.key})` : `only an alpha (${alpha!.key})`;
    return { reason: `${group.module} has ${have} but no ${down ? "up" : up ? "down" : "down/up"} factor` };
  }
  const components = group.component ? [group.component] : COMPONENTS;
  let component: LoraComponent | undefined;
  let module: string | undefined;
  for (const c of components) {
    const found = indexes[c].resolve(group.candidates, group.underscored ? group.module : undefined);
    if (found.ambiguous) return { reason: `kohya name ${group.module} fits several ${c} modules: ${found.ambiguous.join(", ")}` };
    if (found.module !== undefined) {
      component = c;
      module = found.module;
      break;
    }
  }
  if (component === undefined || module === undefined) return missingTarget(group, components, indexes);

  const factors = checkFactors(down, up);
  if (typeof factors === "string") return { reason: factors };
  const { scale, alpha: alphaValue } = scales.scaleOf(component, module, factors.rank, alpha?.entry, alpha?.key);
  return {
    component,
    parameter: `${module}.weight`,
    down: down.entry,
    up: up.entry,
    scale,
    kind: factors.kind,
    rank: factors.rank,
    ...(alphaValue !== undefined ? { alpha: alphaValue } : {}),
    format: group.format ?? "kohya",
    keys: { down: down.key, up: up.key, ...(alpha ? { alpha: alpha.key } : {}) },
  };
}

function missingTarget(group: Group, components: readonly LoraComponent[], indexes: Record<LoraComponent, ParameterIndex>): Problem {
  const where = components.join(" or ");
  const empty = components.filter((c) => indexes[c].size === 0);
  const note = empty.length ? ` (no parameter names were given for ${empty.join(", ")})` : "";
  const reason = group.underscored
    ? `kohya module ${group.module} matches no ${where} parameter${note}`
    : `${where} has no parameter ${group.candidates.map((c) => `${c}.weight`).join(" or ")}${note}`;
  return { reason, missing: true };
}

/** Rank and kind of a down/up pair, or what is wrong with it. */
function checkFactors(down: Part, up: Part): { rank: number; kind: "linear" | "conv" } | string {
  for (const part of [down, up]) {
    if (!FLOAT_DTYPES.has(part.entry.dtype)) return `${part.key} is ${part.entry.dtype}, not a float tensor`;
    if (part.entry.shape.length < 2) return `${part.key} has shape [${part.entry.shape.join(", ")}], not a matrix or conv kernel`;
  }
  const rank = down.entry.shape[0];
  if (up.entry.shape[1] !== rank) {
    return `${up.key} [${up.entry.shape.join(", ")}] and ${down.key} [${down.entry.shape.join(", ")}] disagree on the rank`;
  }
  // LoRA's up factor is a 1x1 projection; a larger kernel would need a convolution, not a matmul.
  if (up.entry.shape.slice(2).some((d) => d !== 1)) return `${up.key} has a ${up.entry.shape.slice(2).join("x")} kernel; only 1x1 up factors are supported`;
  return { rank, kind: down.entry.shape.length > 2 ? "conv" : "linear" };
}

function listOf(keys: readonly string[]): string {
  const shown = keys.slice(0, LISTED).join(", ");
  return keys.length > LISTED ? `${shown} (and ${keys.length - LISTED} more)` : shown;
}

function unknownFormat(file: SafetensorsFile, skipped: SkippedLoraEntry[], source: string): ModelFormatError {
  const keys = [...file.tensors.keys()];
  const reasons = skipped.filter((s) => !s.reason.includes("known format")).map((s) => s.reason);
  const why = reasons.length ? `: ${listOf(reasons)}` : "";
  return new ModelFormatError(
    `${source} holds no LoRA in a format torchvid reads (diffusers/PEFT lora_A/lora_B, old diffusers *_lora.down/up, kohya lora_unet_*.lora_down/up)${why}. ` +
      (keys.length ? `Its first keys: ${keys.slice(0, 5).join(", ")}` : "It holds no tensors"),
  );
}

function cannotApply(skipped: SkippedLoraEntry[], source: string, applicable: number, missingTargets: boolean): ModelFormatError {
  const reasons = skipped.map((s) => s.reason);
  const hint = missingTargets ? "Is it made for another model? " : "";
  return new ModelFormatError(
    `${source} cannot be applied as it is: ${listOf(reasons)}. ` +
      `${hint}${applicable} other update(s) would apply; pass { strict: false } to apply those and skip the rest.`,
  );
}
