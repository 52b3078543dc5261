/**
 * The ONE place that loads the native addon. Picks a binary in this order, logging why each
 * candidate was passed over:
 *   1. `TORCHVID_ADDON` (an explicit path to a torchvid.node),
 *   2. a local build (build/Release, build/Debug: what node-gyp-build resolves first),
 *   3. the prebuilds in prebuilds/<platform>-<arch>/, named
 *      `torchvid.<cpu|cuda>-libtorch<major.minor>.napi.node` (scripts/prebuilds.mjs): CUDA variants
 *      first, then the newest libtorch.
 * Each binary has a `.json` sidecar (the same name with `.json` for `.node`; a local build's is
 * build/Release/torchvid.json) saying which libtorch it was built for; a candidate is used only
 * when a libtorch of that version (and, for a CUDA build, with CUDA) is present. If none fits, a
 * NativeLoadError says what was expected and how to fix it; a libtorch mismatch never reaches
 * dlopen, so it cannot crash.
 *
 * `TORCHVID_PACKAGE_ROOT` (internal, for tests) makes the loader look for build/ and prebuilds/
 * under another folder.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// Plain-JS modules shared with scripts/ (which run before TypeScript is built). Imported as
// "../lib/..." so that the same path works from lib/ (tsx) and from dist/ (the package ships lib/).
import { sourceHash } from "../lib/source-hash.mjs";
import { findLibtorchCandidates, LIBTORCH_HELP, type LibtorchLocation } from "../lib/find-libtorch.mjs";
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
  /**
   * The libtorch libraries the binary needs by SONAME (its DT_NEEDED entries, written by
   * scripts/prebuilds.mjs): Debian's are versioned (libc10.so.1.13), a libtorch download's are not
   * (libc10.so), so a libtorch of the right version can still be the wrong build.
   */
  torchLibs?: string[];
  /** sha256 (16 hex) of the CMakeLists.txt, src/ and binding/ it was built from (scripts/prebuilds.mjs). */
  sourceHash?: string;
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
  /** Whether the libtorch was preloaded because the binary's rpath points elsewhere. */
  preloaded?: boolean;
}

const require = createRequire(import.meta.url);

/** The package root (works from lib/ under tsx and from dist/ after tsc). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Where build/ and prebuilds/ are looked for: the package root, or TORCHVID_PACKAGE_ROOT (tests). */
function binaryRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.TORCHVID_PACKAGE_ROOT || packageRoot;
}

/**
 * The sidecar of a binary: `<file>.json` for `<file>.node` (torchvid.cpu-libtorch1.13.napi.node ->
 * torchvid.cpu-libtorch1.13.napi.json). A prebuild never borrows another file's sidecar: a
 * prebuilds folder holds several variants side by side.
 */
export function readManifest(nodeFile: string): BinaryManifest | null {
  const file = nodeFile.replace(/\.node$/, ".json");
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, "utf8")) as BinaryManifest;
    return m && typeof m === "object" && typeof m.torchVersion === "string" ? m : null;
  } catch {
    return null;
  }
}

/** `torchvid.cuda-libtorch2.11.napi.node` -> { variant: "cuda", torch: [2, 11] } (null for other names). */
export function parsePrebuildName(file: string): { variant: "cpu" | "cuda"; torch: [number, number] } | null {
  const m = /^torchvid\.(cpu|cuda)-libtorch(\d+)\.(\d+)\.napi\.node$/.exec(basename(file));
  return m ? { variant: m[1] as "cpu" | "cuda", torch: [Number(m[2]), Number(m[3])] } : null;
}

/** The file name scripts/prebuilds.mjs gives a prebuild: torchvid.<variant>-libtorch<major.minor>.napi.node. */
export function prebuildFileName(variant: "cpu" | "cuda", torchVersion: string): string {
  const mm = majorMinor(torchVersion);
  if (!mm) throw new RangeError(`Expected a libtorch version like 2.11.0 but received ${JSON.stringify(torchVersion)}`);
  return `torchvid.${variant}-libtorch${mm}.napi.node`;
}

/** CUDA variants first, then the newest libtorch, then by name. */
function comparePrebuilds(a: string, b: string): number {
  const pa = parsePrebuildName(a);
  const pb = parsePrebuildName(b);
  const cuda = Number(pb?.variant === "cuda") - Number(pa?.variant === "cuda");
  if (cuda) return cuda;
  if (pa && pb && (pa.torch[0] !== pb.torch[0] || pa.torch[1] !== pb.torch[1])) return pb.torch[0] - pa.torch[0] || pb.torch[1] - pa.torch[1];
  if (!pa !== !pb) return pa ? -1 : 1;
  return a.localeCompare(b);
}

/** Binary candidates in priority order. */
export function listBinaryCandidates(root = binaryRoot(), env: NodeJS.ProcessEnv = process.env): BinaryCandidate[] {
  const out: BinaryCandidate[] = [];
  const seen = new Set<string>();
  const add = (path: string, origin: BinaryCandidate["origin"]) => {
    if (seen.has(path) || !existsSync(path)) return;
    seen.add(path);
    out.push({ path, origin, manifest: readManifest(path) });
  };
  if (env.TORCHVID_ADDON) add(env.TORCHVID_ADDON, "TORCHVID_ADDON");
  const prebuildDir = join(root, "prebuilds", `${process.platform}-${process.arch}`);
  try {
    // A local build wins (node-gyp-build's own rule). Among prebuilds node-gyp-build cannot tell
    // CPU from CUDA or one libtorch from another: those are ordered below instead.
    const nodeGypBuild = require("node-gyp-build") as { resolve(dir: string): string };
    const local = nodeGypBuild.resolve(root);
    if (dirname(local) !== prebuildDir) add(local, "node-gyp-build");
  } catch {
    // no local build and no tag-matching prebuild: the prebuild scan below may still find one
  }
  if (existsSync(prebuildDir)) {
    // CUDA variants first: on a machine whose libtorch has CUDA they are the better choice.
    const files = readdirSync(prebuildDir)
      .filter((f) => f.endsWith(".node"))
      .sort(comparePrebuilds);
    for (const f of files) add(join(prebuildDir, f), "prebuild");
  }
  return out;
}

/** Whether a libtorch has CUDA: python reports it; a libtorch folder has libtorch_cuda / libc10_cuda. */
export function libtorchHasCuda(l: LibtorchLocation): boolean {
  if (l.cuda) return true;
  if (!l.libDir) return false;
  return ["libtorch_cuda.so", "libc10_cuda.so", "libtorch_cuda.dylib"].some((f) => existsSync(join(l.libDir!, f)));
}

function majorMinor(version: string | null | undefined): string | null {
  const m = /^(\d+)\.(\d+)/.exec(version ?? "");
  return m ? `${m[1]}.${m[2]}` : null;
}

/**
 * Decides which libtorch a candidate would run against, or why it cannot run. Pure (no loading),
 * so the selection policy is testable without a GPU or a second libtorch:
 *   - no sidecar (an unlabelled local build): the first libtorch found, the linker decides;
 *   - the libtorch the binary was linked against (its rpath) is still there and, where its
 *     version is known, still the same major.minor: that one;
 *   - else a libtorch of the same major.minor found elsewhere (TORCHVID_LIBTORCH, Torch_DIR,
 *     python3, system), with CUDA for a CUDA build (the same CUDA major where both are known);
 *     the loader preloads it, since the binary's rpath points elsewhere;
 *   - else a reason naming the version (and variant) expected and the libtorches found.
 */
export function matchLibtorch(candidate: BinaryCandidate, libtorches: readonly LibtorchLocation[]): { libtorch: LibtorchLocation | null; reason?: string } {
  const m = candidate.manifest;
  if (!m) return { libtorch: libtorches[0] ?? null }; // an unlabelled local build: trust the linker
  const want = majorMinor(m.torchVersion);
  const found = () => libtorches.map((l) => `${l.version ?? "?"}${libtorchHasCuda(l) ? " CUDA" : ""} (${l.source}${l.libDir ? ` ${l.libDir}` : ""})`).join(", ") || "none";
  const variant = m.variant === "cuda" ? `CUDA libtorch ${m.torchVersion}${m.cudaVersion ? ` (CUDA ${m.cudaVersion})` : ""}` : `libtorch ${m.torchVersion}`;
  // The libtorch the binary was linked against (its rpath) is the best match when it is still there.
  if (m.torchLibDir && existsSync(m.torchLibDir)) {
    const same = libtorches.find((l) => l.libDir === m.torchLibDir);
    if (!same || !same.version || majorMinor(same.version) === want) {
      return { libtorch: same ?? { source: "system", torchDir: m.torchDir, libDir: m.torchLibDir, version: m.torchVersion, cuda: m.cudaVersion } };
    }
    // Replaced in place (e.g. `pip install -U torch`): look for the right version elsewhere.
  }
  const cudaMajor = (v: string | null | undefined) => /^(\d+)/.exec(v ?? "")?.[1] ?? null;
  const hasLibs = (l: LibtorchLocation) => !m.torchLibs?.length || m.torchLibs.every((f) => existsSync(join(l.libDir!, f)));
  const versionOnly = libtorches.filter((l) => majorMinor(l.version) === want && l.libDir);
  const sameVersion = versionOnly.filter(hasLibs);
  const missing = versionOnly.length > sameVersion.length ? `; ${versionOnly.filter((l) => !hasLibs(l)).map((l) => l.libDir).join(", ")} lacks ${m.torchLibs!.join(" / ")}` : "";
  if (m.variant === "cuda") {
    const withCuda = sameVersion.filter(libtorchHasCuda);
    const cuda = withCuda.find((l) => !m.cudaVersion || !l.cuda || cudaMajor(l.cuda) === cudaMajor(m.cudaVersion));
    if (cuda) return { libtorch: cuda };
    const why = withCuda.length ? `a CUDA ${withCuda.map((l) => l.cuda).join("/")} libtorch ${want}` : sameVersion.length ? `libtorch ${want} without CUDA` : `no libtorch ${want}`;
    return { libtorch: null, reason: `built for ${variant}; ${why} found (found: ${found()})${missing}` };
  }
  if (sameVersion.length > 0) return { libtorch: sameVersion[0]! };
  // Built against a libtorch in the default library path (no rpath), found there again.
  const system = libtorches.find((l) => l.source === "system" && majorMinor(l.version) === want);
  if (!m.torchLibDir && system) return { libtorch: system };
  return { libtorch: null, reason: `built for ${variant}, found: ${found()}${missing}` };
}

/**
 * Whether the loader must preload the chosen libtorch before the binary: its rpath (torchLibDir)
 * points somewhere else, or it has none and the libtorch is outside the default library path.
 */
export function needsPreload(candidate: BinaryCandidate, libtorch: LibtorchLocation | null): boolean {
  const m = candidate.manifest;
  if (!m || !libtorch?.libDir) return false;
  if (m.torchLibDir) return libtorch.libDir !== m.torchLibDir;
  return libtorch.source !== "system";
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

/** One candidate in the loader's plan: the libtorch it would run against, or why it is skipped. */
export interface LoadStep {
  candidate: BinaryCandidate;
  libtorch: LibtorchLocation | null;
  /** Whether that libtorch is preloaded (RTLD_GLOBAL) before the binary: its rpath points elsewhere. */
  preload: boolean;
  reason?: string;
}

/**
 * The loader's plan, in order (pure: nothing is loaded). The first step without a reason is tried
 * first. With `sources` (the sourceHash of the sources beside the binaries), a prebuild built from
 * other sources is skipped as stale: it may lack functions the TypeScript layer calls.
 */
export function planLoad(candidates: readonly BinaryCandidate[], libtorches: readonly LibtorchLocation[], sources: string | null = null): LoadStep[] {
  return candidates.map((candidate) => {
    const built = candidate.manifest?.sourceHash;
    if (built && sources && built !== sources) {
      const reason = `stale: built from other sources (${built}; these are ${sources}): run \`npm run build:native\`, or \`npm run prebuilds\` to refresh it`;
      return { candidate, libtorch: null, preload: false, reason };
    }
    const { libtorch, reason } = matchLibtorch(candidate, libtorches);
    return reason ? { candidate, libtorch: null, preload: false, reason } : { candidate, libtorch, preload: needsPreload(candidate, libtorch) };
  });
}

/** The error thrown when no binary loads: where, every reason, and the fixes. */
export function nativeLoadError(reasons: readonly string[], root = binaryRoot()): NativeLoadError {
  const where = `${process.platform}-${process.arch}, Node ${process.version} (N-API ${process.versions.napi})`;
  const all = reasons.length ? reasons : [`no torchvid.node found under ${root} (no local build in build/Release, no prebuilds/${process.platform}-${process.arch}/)`];
  return new NativeLoadError(
    `Could not load the torchvid native addon on ${where}.\n${all.map((r) => `  - ${r}`).join("\n")}\n` +
      `Fix: run \`npm run setup\` (installs libtorch if missing and builds the addon), or \`npm run build:native\` after installing libtorch. ${LIBTORCH_HELP}`,
  );
}

/**
 * libgomp (libtorch's OpenMP) reads its spin policy once, when it is loaded along with the addon.
 * Its default lets idle worker threads spin for ~300,000 iterations between parallel regions,
 * which on a busy machine (a server, or a CPU shared with other processes) burns the cores the
 * computation needs: one UNet forward took 3x the CPU time and 3-4x the wall time (bench/NOTES.md).
 * The libuv pool torchvid used before got libgomp's throttled spin (1,000) by accident, because
 * its 4 threads each made an OpenMP team; the persistent executor thread asks for it explicitly.
 * A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (GOMP_SPINCOUNT=300000 restores the default).
 */
export function tuneOpenMP(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OMP_WAIT_POLICY === undefined && env.GOMP_SPINCOUNT === undefined) env.GOMP_SPINCOUNT = "1000";
}

function load(): { binding: NativeBinding; binary: LoadedBinary } {
  tuneOpenMP();
  const candidates = listBinaryCandidates();
  // Asking python3 for its torch costs a second or more: only when nothing cheaper fits.
  const cheap = findLibtorchCandidates({ python: false });
  const usable = (libs: LibtorchLocation[]) => candidates.some((c) => !matchLibtorch(c, libs).reason);
  const libtorches = candidates.length === 0 || usable(cheap) ? cheap : findLibtorchCandidates({ python: process.env.TORCHVID_PYTHON ?? "python3" });
  const reasons: string[] = [];
  const explicit = process.env.TORCHVID_ADDON;
  if (explicit && !candidates.some((c) => c.origin === "TORCHVID_ADDON")) reasons.push(`TORCHVID_ADDON=${explicit}: no such file`);
  const sources = candidates.some((c) => c.manifest?.sourceHash) ? sourceHash(binaryRoot()) : null;
  for (const step of planLoad(candidates, libtorches, sources)) {
    const { candidate, libtorch } = step;
    if (step.reason) {
      reasons.push(`${candidate.path}: ${step.reason}`);
      continue;
    }
    try {
      if (step.preload) preloadLibtorch(libtorch!.libDir!);
      const binding = require(candidate.path) as NativeBinding;
      return { binding, binary: { path: candidate.path, origin: candidate.origin, manifest: candidate.manifest, libtorch, preloaded: step.preload } };
    } catch (err) {
      const first = String((err as Error)?.message ?? err).split("\n")[0]!;
      reasons.push(`${candidate.path}: ${first.startsWith(`${candidate.path}: `) ? first.slice(candidate.path.length + 2) : first}`);
    }
  }
  if (!candidates.some((c) => c.origin !== "TORCHVID_ADDON")) {
    reasons.push(`no torchvid.node found under ${binaryRoot()} (no local build in build/Release, no prebuilds/${process.platform}-${process.arch}/)`);
  }
  throw nativeLoadError(reasons);
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

export { sourceHash };
