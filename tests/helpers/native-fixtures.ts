/** Builds the TorchScript test modules once per process with Python torch (tests/native/make_fixtures.py). */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runPython } from "./python.ts";

export interface NativeFixtures {
  dir: string;
  expected: {
    affine_input: number[];
    affine_output: number[];
    affine_output_bf16: number[];
    affine_parameters: Record<string, number[]>;
    randn: Record<string, number[] | number[][]>;
    ops: Record<string, number[]>;
  };
}

let cached: NativeFixtures | undefined;

export function nativeFixtures(): NativeFixtures {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), "torchvid-native-"));
  runPython([fileURLToPath(new URL("../native/make_fixtures.py", import.meta.url)), dir]);
  cached = { dir, expected: JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) };
  return cached;
}
