/**
 * The ONE place that loads the native addon. Picks a binary in this order, logging why each
 * candidate was passed over:
 *   1. `TORCHVID_ADDON` (an explicit path to a torchvid.node),
 *   2. what node-gyp-build resolves (a local build in build/Release, else a prebuild whose tags match),
 *   3. every other prebuild in prebuilds/<platform>-<arch>/ (CPU and CUDA variants side by side).
 * Each binary has a `.json` sidecar saying which libtorch it was built for; a candidate is used only
 * when a libtorch of that version is present. If none fits, a NativeLoadError says what was
 * expected and how to fix it; a libtorch mismatch never reaches dlopen, so it cannot crash.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findLibtorchCandidates, LIBTORCH_HELP, type LibtorchLocation } from "../scripts/find-libtorch.mjs";
import { NativeLoadError } from "./errors.ts";
import type { NativeBinding } from "./native-types.ts";

/** What a binary's sidecar JSON records (written by CMake next to the .node). */
export interface BinaryManifest {
  addonVersion: string;
  torchVersion: string;
  variant: "cpu" | "cuda";
  cudaVersion: string | null;
  torchDir: string;
  torchLibDir: string;
  platform: string;
}

export interface BinaryCandidate {
  path: string;
  origin: "TORCHVID_ADDON" | "node-gyp-build" | "prebuild";
  manifest: BinaryManifest | null;
}

/** Where the addon and its libtorch came from (reported by `info()`). */
export interface LoadedBinary {
  path: string;
  origin: BinaryCandidate["origin"];
  manifest: BinaryManifest | null;
  libtorch: LibtorchLocation | null;
}

const require = createRequire(import.meta.url);

/** The package root (works from lib/ under tsx and from dist/ after tsc). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

function readManifest(nodeFile: string): BinaryManifest | null {
  const sidecars = [nodeFile.replace(/\.node$/, ".json"), join(dirname(nodeFile), "torchvid.json")];
  for (const file of sidecars) {
    if (!existsSync(file)) continue;
    try {
      return JSON.parse(readFileSync(file, "utf8")) as BinaryManifest;
    } catch {
      return null;
    }
  }
  return null;
}

/** Binary candidates in priority order. */
export function listBinaryCandidates(root = packageRoot, env: NodeJS.ProcessEnv = process.env): BinaryCandidate[] {
  const out: BinaryCandidate[] = [];
  const seen = new Set<string>();
  const add = (path: string, origin: BinaryCandidate["origin"]) => {
    if (seen.has(path) || !existsSync(path)) return;
    seen.add(path);
    out.push({ path, origin, manifest: readManifest(path) });
  };
  if (env.TORCHVID_ADDON) add(env.TORCHVID_ADDON, "TORCHVID_ADDON");
  try {
    const nodeGypBuild = require("node-gyp-build") as { resolve(dir: string): string };
    add(nodeGypBuild.resolve(root), "node-gyp-build");
  } catch {
    // no local build and no tag-matching prebuild: the prebuild scan below may still find one
  }
  const prebuildDir = join(root, "prebuilds", `${process.platform}-${process.arch}`);
  if (existsSync(prebuildDir)) {
    // CUDA variants first: on a machine whose libtorch has CUDA they are the better choice.
    const files = readdirSync(prebuildDir)
      .filter((f) => f.endsWith(".node"))
      .sort((a, b) => Number(b.includes(".cuda")) - Number(a.includes(".cuda")) || a.localeCompare(b));
    for (const f of files) add(join(prebuildDir, f), "prebuild");
  }
  return out;
}

function majorMinor(version: string | null | undefined): string | null {
  const m = /^(\d+)\.(\d+)/.exec(version ?? "");
  return m ? `${m[1]}.${m[2]}` : null;
}

/**
 * Decides which libtorch a candidate would run against, or why it cannot run. Pure (no loading),
 * so the selection policy is testable without a GPU or a second libtorch.
 */
export function matchLibtorch(candidate: BinaryCandidate, libtorches: readonly LibtorchLocation[]): { libtorch: LibtorchLocation | null; reason?: string } {
  const m = candidate.manifest;
  if (!m) return { libtorch: libtorches[0] ?? null }; // an unlabelled local build: trust the linker
  const want = majorMinor(m.torchVersion);
  // The libtorch the binary was linked against (its rpath) is the best match when it is still there.
  if (m.torchLibDir && existsSync(m.torchLibDir)) {
    const same = libtorches.find((l) => l.libDir === m.torchLibDir);
    return { libtorch: same ?? { source: "system", torchDir: m.torchDir, libDir: m.torchLibDir, version: m.torchVersion, cuda: m.cudaVersion } };
  }
  const sameVersion = libtorches.filter((l) => majorMinor(l.version) === want && l.libDir);
  if (m.variant === "cuda") {
    const cuda = sameVersion.find((l) => l.cuda);
    if (cuda) return { libtorch: cuda };
    return { libtorch: null, reason: `built for CUDA libtorch ${m.torchVersion} (CUDA ${m.cudaVersion ?? "?"}); no CUDA libtorch ${want} found` };
  }
  if (sameVersion.length > 0) return { libtorch: sameVersion[0] };
  if (!m.torchLibDir && libtorches.some((l) => l.source === "system" && majorMinor(l.version) === want)) {
    return { libtorch: libtorches.find((l) => l.source === "system") ?? null };
  }
  const have = libtorches.map((l) => `${l.version ?? "?"} (${l.source})`).join(", ") || "none";
  return { libtorch: null, reason: `built for libtorch ${m.torchVersion}, found: ${have}` };
}

// Makes libtorch's shared libraries resolvable for a binary built elsewhere: loaded with
// RTLD_GLOBAL, the dynamic linker satisfies the addon's DT_NEEDED entries from them.
function preloadLibtorch(libDir: string): void {
  const flags = constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL;
  for (const lib of ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"]) {
    const file = join(libDir, lib);
    if (!existsSync(file)) continue;
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, flags);
    } catch (err) {
      // A plain shared library is not a Node module: this error is expected after it loaded.
      if (!/self-register|Module did not/i.test(String((err as Error).message))) throw err;
    }
  }
}

let loaded: { binding: NativeBinding; binary: LoadedBinary } | undefined;
let loadError: NativeLoadError | undefined;

function load(): { binding: NativeBinding; binary: LoadedBinary } {
  const candidates = listBinaryCandidates();
  // Asking python3 for its torch costs a second or more: only when nothing cheaper fits.
  const cheap = findLibtorchCandidates({ python: false });
  const usable = (libs: LibtorchLocation[]) => candidates.some((c) => !matchLibtorch(c, libs).reason);
  const libtorches = usable(cheap) ? cheap : findLibtorchCandidates({ python: process.env.TORCHVID_PYTHON ?? "python3" });
  const reasons: string[] = [];
  for (const candidate of candidates) {
    const { libtorch, reason } = matchLibtorch(candidate, libtorches);
    if (reason) {
      reasons.push(`${candidate.path}: ${reason}`);
      continue;
    }
    try {
      if (libtorch?.libDir && candidate.manifest && libtorch.libDir !== candidate.manifest.torchLibDir) preloadLibtorch(libtorch.libDir);
      const binding = require(candidate.path) as NativeBinding;
      return { binding, binary: { path: candidate.path, origin: candidate.origin, manifest: candidate.manifest, libtorch } };
    } catch (err) {
      reasons.push(`${candidate.path}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const where = `${process.platform}-${process.arch}, Node ${process.version} (N-API ${process.versions.napi})`;
  const tried = reasons.length ? reasons.map((r) => `  - ${r}`).join("\n") : "  - no torchvid.node found (no local build in build/Release, no prebuilds/ for this platform)";
  throw new NativeLoadError(
    `Could not load the torchvid native addon on ${where}.\n${tried}\n` +
      `Fix: run \`npm run setup\` (installs libtorch if missing and builds the addon), or \`npm run build:native\` after installing libtorch. ${LIBTORCH_HELP}`,
  );
}

/** The loaded addon (loaded on first use; the same NativeLoadError is rethrown on later calls). */
export function native(): NativeBinding {
  if (loaded) return loaded.binding;
  if (loadError) throw loadError;
  try {
    loaded = load();
    return loaded.binding;
  } catch (err) {
    loadError = err instanceof NativeLoadError ? err : new NativeLoadError(String((err as Error)?.message ?? err), { cause: err });
    throw loadError;
  }
}

/** Which binary was loaded and against which libtorch (loads it if needed). */
export function loadedBinary(): LoadedBinary {
  native();
  return loaded!.binary;
}

/** A short name for logs: "torchvid.node (node-gyp-build)". */
export function describeBinary(b: LoadedBinary): string {
  return `${basename(b.path)} (${b.origin})`;
}
