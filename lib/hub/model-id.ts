/**
 * Model ids (`org/name`, `org/name@revision`, `hf:org/name`) versus folder paths. A string that
 * names an existing path is always a path; otherwise a string shaped like a Hub repo id is an id.
 */
import { existsSync } from "node:fs";

export interface ModelId {
  /** `org/name`, as on huggingface.co. */
  repo: string;
  /** A branch, tag or commit; undefined means the repo's default branch ("main"). */
  revision?: string;
}

// Hub repo names: letters, digits, "-", "_", "."; no "--" or ".." (the Hub refuses those too).
const NAME = "[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?";
const ID = new RegExp(`^(?:hf:)?(${NAME})/(${NAME})(?:@([A-Za-z0-9][A-Za-z0-9._/-]*))?$`);

/** Parses `value` as a model id, or returns null when it is a path (existing, or not id-shaped). */
export function parseModelId(value: string): ModelId | null {
  if (typeof value !== "string" || existsSync(value)) return null;
  const m = ID.exec(value);
  if (!m || m[1]!.includes("--") || m[2]!.includes("--") || value.includes("..")) return null;
  return { repo: `${m[1]}/${m[2]}`, ...(m[3] ? { revision: m[3] } : {}) };
}

export function isModelId(value: string): boolean {
  return parseModelId(value) !== null;
}

/** `org/name@revision` (or `org/name`), how ids are shown back to people. */
export function formatModelId(id: ModelId): string {
  return id.revision ? `${id.repo}@${id.revision}` : id.repo;
}
