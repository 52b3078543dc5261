/** The reference tiny checkpoint converted to a torchvid model folder, once per process. */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runPython } from "./python.ts";

export const referenceDir = fileURLToPath(new URL("../fixtures/reference/", import.meta.url));
export const referenceCheckpoint = join(referenceDir, "models", "pipeline");
const toolsDir = fileURLToPath(new URL("../../tools/", import.meta.url));

let cached: string | undefined;

/** Converts with `python3 -m convert` (the real converter) into a temp folder. */
export function referenceModel(): string {
  if (cached && existsSync(cached)) return cached;
  const out = join(mkdtempSync(join(tmpdir(), "torchvid-ref-")), "model");
  runPython(["-m", "convert", referenceCheckpoint, out, "--quiet"], { cwd: toolsDir });
  return (cached = out);
}
