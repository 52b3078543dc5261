/** Finds a python3 that has torch (tests compare with Python torch results). */
import { execFileSync } from "node:child_process";

let cached: string | null | undefined;

export function pythonWithTorch(): string | null {
  if (cached !== undefined) return cached;
  for (const candidate of [process.env.TORCHVID_PYTHON, "/usr/bin/python3", "python3"]) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ["-c", "import torch"], { stdio: "ignore", timeout: 60_000 });
      return (cached = candidate);
    } catch {
      // try the next one
    }
  }
  return (cached = null);
}

/** Runs a Python script with the torch-enabled interpreter; throws with its stderr on failure. */
export function runPython(args: string[], options: { cwd?: string } = {}): string {
  const python = pythonWithTorch();
  if (!python) throw new Error("no python3 with torch found: run `npm run setup` (installs python3-torch) or set TORCHVID_PYTHON");
  return execFileSync(python, args, { encoding: "utf8", cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
}
