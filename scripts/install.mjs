#!/usr/bin/env node
// npm's install hook: keep a binary that loads against the libtorch found here (a prebuild or an
// earlier local build), otherwise build one with cmake-js. Fails with one clear message when no
// libtorch is installed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

if (process.env.TORCHVID_SKIP_BUILD) {
  console.log("torchvid: TORCHVID_SKIP_BUILD set, not building the native addon");
  process.exit(0);
}

// Probe in a child process: a binary that does not fit this machine must not crash npm.
// The published package has dist/; a source checkout has lib/ and tsx (a dev dependency).
const loader = existsSync(join(root, "dist", "native.js")) ? ["--input-type=module", "-e", "import('./dist/native.js')"] : ["--import", "tsx", "-e", "import('./lib/native.ts')"];
loader[loader.length - 1] += ".then(m => { m.native(); console.log(m.describeBinary(m.loadedBinary())) })";
const probe = spawnSync(process.execPath, loader, { cwd: root, encoding: "utf8" });
if (probe.status === 0 && !process.env.TORCHVID_FORCE_BUILD) {
  console.log(`torchvid: using ${probe.stdout.trim()}`);
  process.exit(0);
}
const build = spawnSync(process.execPath, [join(root, "scripts", "build-native.mjs")], { cwd: root, stdio: "inherit" });
process.exit(build.status ?? 1);
