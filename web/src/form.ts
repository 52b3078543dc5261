/** The generate form: reading it into a request body, presets, "use these settings", seeds. */
import type { Preset, Settings } from "./api.js";
import { $ } from "./dom.js";

export const form = $<HTMLFormElement>("#generate");

export function field<T extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(name: string, root: HTMLFormElement = form): T {
  return root.elements.namedItem(name) as T;
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

export function numberOf(name: string, root: HTMLFormElement = form): number | undefined {
  const v = field<HTMLInputElement>(name, root).value.trim();
  return v === "" ? undefined : Number(v);
}

export function applyPreset(presets: readonly Preset[], name: string): void {
  const preset = presets.find((p) => p.name === name);
  if (!preset || preset.kind !== "generate") return;
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale"] as const) {
    const v = preset[key];
    if (v !== undefined) field<HTMLInputElement>(key).value = String(v);
  }
}

export function useSettings(s: Settings): void {
  field<HTMLTextAreaElement>("prompt").value = s.prompt ?? "";
  field<HTMLTextAreaElement>("negativePrompt").value = s.negativePrompt ?? "";
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale", "fps", "seed"] as const) {
    const v = s[key];
    if (v !== undefined) field<HTMLInputElement>(key).value = String(v);
  }
  field<HTMLSelectElement>("scheduler").value = s.scheduler ?? "";
  field<HTMLInputElement>("model").value = s.model ?? "";
  field<HTMLSelectElement>("preset").value = "";
  field<HTMLInputElement>("lockSeed").checked = true;
  field<HTMLTextAreaElement>("prompt").focus();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

export function showError(el: HTMLElement, message: string | null): void {
  el.textContent = message ?? "";
  el.hidden = message === null;
}


/** The body of `POST /api/generate` from the form; a new seed first unless the seed is locked. */
export function generateBody(): Record<string, unknown> {
  if (!field<HTMLInputElement>("lockSeed").checked || field<HTMLInputElement>("seed").value.trim() === "") {
    field<HTMLInputElement>("seed").value = String(randomSeed());
  }
  const body: Record<string, unknown> = { prompt: field<HTMLTextAreaElement>("prompt").value };
  const negative = field<HTMLTextAreaElement>("negativePrompt").value;
  if (negative.trim()) body.negativePrompt = negative;
  for (const key of ["width", "height", "numFrames", "numInferenceSteps", "guidanceScale", "fps", "seed"]) {
    const v = numberOf(key);
    if (v !== undefined) body[key] = v;
  }
  const scheduler = field<HTMLSelectElement>("scheduler").value;
  if (scheduler) body.scheduler = scheduler;
  const model = field<HTMLInputElement>("model").value.trim();
  if (model) body.model = model;
  return body;
}
