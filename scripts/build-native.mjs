#!/usr/bin/env node
// Builds the addon with cmake-js against the libtorch that scripts/find-libtorch.mjs picks.
// Headers come from the node-api-headers package (package.json "binary.napi_versions"), so
// nothing is downloaded. Usage: node scripts/build-native.mjs [--out DIR] [--debug]
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findLibtorch, LIBTORCH_HELP } from "../lib/find-libtorch.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? args[outIndex + 1] : "build";

const torch = findLibtorch();
if (!torch) {
  console.error(`torchvid: no libtorch found to build against. ${LIBTORCH_HELP}`);
  process.exit(1);
}
console.log(`torchvid: building against libtorch ${torch.version ?? "(unknown version)"} from ${torch.source}: ${torch.torchDir}`);

const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? "2";
const cmakeArgs = [cmakeJs, "compile", "--out", out, `--CDTorch_DIR=${torch.torchDir}`];
if (args.includes("--debug")) cmakeArgs.push("--debug");
const result = spawnSync(process.execPath, cmakeArgs, {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
});
process.exit(result.status ?? 1);
