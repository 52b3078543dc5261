/** The python3 with torch that tests compare against: the same search `torchvid convert` uses. */
import { execFileSync } from "node:child_process";
import { findPythonWithTorch } from "../../lib/cli/convert.ts";

let cached: string | null | undefined;

export function pythonWithTorch(): string | null {
  if (cached !== undefined) return cached;
  try {
    cached = findPythonWithTorch().python;
  } catch {
    cached = null;
  }
  return cached;
}

/** Runs a Python script with the torch-enabled interpreter; throws with its stderr on failure. */
export function runPython(args: string[], options: { cwd?: string } = {}): string {
  const python = pythonWithTorch();
  if (!python) throw new Error("no python3 with torch found: run `npm run setup` (installs python3-torch) or set TORCHVID_PYTHON");
  return execFileSync(python, args, { encoding: "utf8", cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
}
