#!/usr/bin/env node
// `npm run prebuilds`: builds the addon against the libtorch that scripts/find-libtorch.mjs picks
// and writes it, with its sidecar, as
//   prebuilds/<platform>-<arch>/torchvid.<cpu|cuda>-libtorch<major.minor>.napi.node
//   prebuilds/<platform>-<arch>/torchvid.<cpu|cuda>-libtorch<major.minor>.napi.json
// which lib/native.ts picks when that libtorch is present (a local build in build/ still wins).
//
// prebuildify (Node-API, --napi) drives it: it always calls node-gyp, so it is given a
// `--node-gyp` shim that runs our cmake-js build (scripts/build-native.mjs) instead. prebuildify
// builds in its cwd's build/Release and *moves* the .node out of it, so it works in a throw-away
// staging folder: the checkout's build/ is never touched. The cmake build folder is
// .cache/prebuild-build/<hash of the Torch dir> (incremental across runs, one per libtorch).
// The name is chosen after the build, from the sidecar CMake wrote (variant, libtorch version).
//
// Usage: node scripts/prebuilds.mjs [--from BUILD_DIR] [--out DIR] [--no-strip] [--no-check]
//   --from BUILD_DIR  package an existing cmake-js build (BUILD_DIR/Release/torchvid.node + .json)
//                     instead of building (e.g. `--from build` after `npm run build:native`)
//   --out DIR         write DIR/prebuilds/... (default: the package root)
//   --no-strip        keep symbols (default: strip --strip-all; the rpath survives)
//   --no-check        skip loading the new prebuild in a child process (PREBUILDS_ONLY=1)
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sourceHash } from "../lib/source-hash.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const self = fileURLToPath(import.meta.url);
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);

/** The file name of a prebuild (lib/native.ts prebuildFileName does the same). */
export function prebuildName(manifest) {
  const m = /^(\d+)\.(\d+)/.exec(manifest.torchVersion ?? "");
  if (!m) throw new Error(`the build's sidecar has no libtorch version (torchVersion: ${JSON.stringify(manifest.torchVersion)})`);
  if (manifest.variant !== "cpu" && manifest.variant !== "cuda") throw new Error(`the build's sidecar has no variant cpu|cuda (variant: ${JSON.stringify(manifest.variant)})`);
  return `torchvid.${manifest.variant}-libtorch${m[1]}.${m[2]}.napi.node`;
}

function fail(message) {
  console.error(`torchvid prebuilds: ${message}`);
  process.exit(1);
}

function option(name) {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const value = argv[i + 1];
  if (!value || value.startsWith("--")) fail(`${name} needs a value`);
  return value;
}

if (argv[0] === "--source-hash") {
  console.log(sourceHash(root));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// node-gyp shim mode: prebuildify runs `<shim> rebuild --target=... --devdir=... --arch=... --release`
// in the staging folder. Build with cmake-js from the package root and put the result where
// prebuildify looks for it (<staging>/build/Release/*.node); keep the sidecar beside the staging root.
if (argv[0] === "--node-gyp-shim") {
  const stage = process.env.TORCHVID_PREBUILD_STAGE;
  const buildDir = process.env.TORCHVID_PREBUILD_BUILD_DIR;
  if (!stage || !buildDir) fail("--node-gyp-shim is internal to scripts/prebuilds.mjs");
  if (!argv.includes("rebuild")) fail(`node-gyp shim: unexpected command ${argv.slice(1).join(" ")}`);
  const args = [join(root, "scripts", "build-native.mjs"), "--out", buildDir];
  if (argv.includes("--debug")) args.push("--debug");
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
  const config = argv.includes("--debug") ? "Debug" : "Release";
  mkdirSync(join(stage, "build", "Release"), { recursive: true });
  copyFileSync(join(buildDir, config, "torchvid.node"), join(stage, "build", "Release", "torchvid.node"));
  copyFileSync(join(buildDir, config, "torchvid.json"), join(stage, "torchvid.json"));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
const outRoot = resolve(option("--out") ?? root);
const from = option("--from");
const strip = !argv.includes("--no-strip");
const prebuildDir = join(outRoot, "prebuilds", `${process.platform}-${process.arch}`);

let nodeFile;
let manifest;
const stage = mkdtempSync(join(tmpdir(), "torchvid-prebuildify-"));
process.on("exit", () => rmSync(stage, { recursive: true, force: true }));
{
  if (from) {
    const dir = [join(resolve(from), "Release"), resolve(from)].find((d) => existsSync(join(d, "torchvid.node")));
    if (!dir) fail(`no torchvid.node in ${from}/Release or ${from}`);
    if (!existsSync(join(dir, "torchvid.json"))) fail(`${dir}/torchvid.json is missing: rebuild with scripts/build-native.mjs (CMake writes it)`);
    nodeFile = join(stage, "torchvid.node");
    copyFileSync(join(dir, "torchvid.node"), nodeFile);
    manifest = JSON.parse(readFileSync(join(dir, "torchvid.json"), "utf8"));
    if (strip && spawnSync("strip", ["--strip-all", nodeFile], { stdio: "inherit" }).status !== 0) fail("strip failed (pass --no-strip)");
  } else {
    const { findLibtorch, LIBTORCH_HELP } = await import("../lib/find-libtorch.mjs");
    const torch = findLibtorch();
    if (!torch) fail(`no libtorch found to build against. ${LIBTORCH_HELP}`);
    const key = createHash("sha1").update(torch.torchDir).digest("hex").slice(0, 12);
    const buildDir = join(root, ".cache", "prebuild-build", key);
    mkdirSync(buildDir, { recursive: true });
    const shim = join(stage, "node-gyp-shim.sh");
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${self}" --node-gyp-shim "$@"\n`);
    chmodSync(shim, 0o755);
    writeFileSync(join(stage, "package.json"), JSON.stringify({ name: "torchvid", private: true }));
    let prebuildify;
    try {
      prebuildify = require("prebuildify");
    } catch {
      fail("prebuildify is not installed (a devDependency: run `npm install`), or package an existing build with --from build");
    }
    process.env.TORCHVID_PREBUILD_STAGE = stage;
    process.env.TORCHVID_PREBUILD_BUILD_DIR = buildDir;
    console.log(`torchvid prebuilds: prebuildify --napi with cmake-js (build folder ${buildDir})`);
    await new Promise((res, rej) =>
      prebuildify(
        { cwd: stage, out: stage, name: "torchvid", napi: true, strip, nodeGyp: shim, targets: [{ runtime: "node", target: process.versions.node }] },
        (err) => (err ? rej(err) : res()),
      ),
    ).catch((err) => fail(`prebuildify failed: ${err.message}`));
    nodeFile = join(stage, "prebuilds", `${process.platform}-${process.arch}`, "torchvid.node");
    if (!existsSync(nodeFile)) fail(`prebuildify did not write ${nodeFile}`);
    manifest = JSON.parse(readFileSync(join(stage, "torchvid.json"), "utf8"));
  }

  // The libtorch SONAMEs it needs (Debian: libc10.so.1.13; a libtorch download: libc10.so), so the
  // loader can tell a libtorch of the right version but another packaging from a usable one.
  const elf = spawnSync("readelf", ["-d", nodeFile], { encoding: "utf8" });
  if (elf.status === 0) {
    manifest.torchLibs = [...elf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((x) => x[1]).filter((lib) => /^lib(c10|torch|shm)/.test(lib));
  }
  manifest.sourceHash = sourceHash(root);
  const name = prebuildName(manifest);
  mkdirSync(prebuildDir, { recursive: true });
  const dest = join(prebuildDir, name);
  copyFileSync(nodeFile, dest);
  chmodSync(dest, 0o755);
  // The prebuild's sidecar: what it needs at run time. torchLibDir stays what the rpath says.
  writeFileSync(dest.replace(/\.node$/, ".json"), `${JSON.stringify({ ...manifest, file: name, node: process.version, napi: 8 }, null, 2)}\n`);
  const size = statSync(dest).size;
  console.log(`torchvid prebuilds: wrote ${dest} (${(size / 1024 / 1024).toFixed(2)} MiB): ${manifest.variant}, libtorch ${manifest.torchVersion}` +
    `${manifest.cudaVersion ? `, CUDA ${manifest.cudaVersion}` : ""}${manifest.torchLibDir ? `, rpath ${manifest.torchLibDir}` : ", libtorch from the default library path"}`);

  // Load it the way a user would, with local builds ignored (node-gyp-build's PREBUILDS_ONLY).
  if (!argv.includes("--no-check")) {
    let tsx = true;
    try {
      require.resolve("tsx");
    } catch {
      tsx = false;
    }
    if (!tsx) {
      console.log("torchvid prebuilds: tsx not installed, load check skipped");
    } else {
      const code =
        "import('./lib/runtime.ts').then((m) => { const i = m.info(); console.log(JSON.stringify({ path: i.binary.path, libtorch: i.libtorch, cuda: i.cudaBuild })) })";
      const r = spawnSync(process.execPath, ["--import", "tsx", "-e", code], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, PREBUILDS_ONLY: "1", TORCHVID_PACKAGE_ROOT: outRoot, TORCHVID_ADDON: "" },
      });
      const picked = r.status === 0 ? JSON.parse(r.stdout.trim().split("\n").at(-1)) : null;
      if (!picked) fail(`the new prebuild does not load here:\n${r.stderr || r.stdout}`);
      if (picked.path !== dest) {
        console.log(`torchvid prebuilds: note: the loader prefers ${picked.path} here (it ranks before ${name})`);
      } else {
        console.log(`torchvid prebuilds: load check ok (libtorch ${picked.libtorch?.version} from ${picked.libtorch?.source})`);
      }
    }
  }
}
