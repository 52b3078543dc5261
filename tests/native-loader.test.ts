// The addon loader's selection policy (lib/native.ts) and the libtorch search order
// (scripts/find-libtorch.mjs), without a GPU: fake binaries, sidecars and libtorch folders in
// temp dirs. Child processes check that a missing or corrupt binary ends in a NativeLoadError,
// never a crash.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type BinaryCandidate,
  type BinaryManifest,
  libtorchHasCuda,
  listBinaryCandidates,
  matchLibtorch,
  nativeLoadError,
  needsPreload,
  parsePrebuildName,
  planLoad,
  prebuildFileName,
  readManifest,
  sourceHash,
} from "../lib/native.ts";
import { NativeLoadError } from "../lib/errors.ts";
import { findLibtorch, findLibtorchCandidates, type LibtorchLocation } from "../lib/find-libtorch.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const platformDir = `${process.platform}-${process.arch}`;
const temp = mkdtempSync(join(tmpdir(), "torchvid-loader-"));
after(() => rmSync(temp, { recursive: true, force: true }));
let serial = 0;
const newDir = (name: string) => {
  const dir = join(temp, `${name}-${serial++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** A libtorch root as a download / pip torch lays it out: share/cmake/Torch + lib/. */
function fakeLibtorch(version: string, opts: { cuda?: boolean; sonames?: string[] } = {}): { root: string; torchDir: string; libDir: string } {
  const root = newDir(`libtorch-${version}${opts.cuda ? "-cuda" : ""}`);
  const torchDir = join(root, "share", "cmake", "Torch");
  const libDir = join(root, "lib");
  mkdirSync(torchDir, { recursive: true });
  mkdirSync(libDir, { recursive: true });
  writeFileSync(join(torchDir, "TorchConfig.cmake"), "# fake\n");
  writeFileSync(join(torchDir, "TorchConfigVersion.cmake"), `set(PACKAGE_VERSION "${version}")\n`);
  const libs = ["libc10.so", "libtorch_cpu.so", "libtorch.so", ...(opts.cuda ? ["libc10_cuda.so", "libtorch_cuda.so"] : []), ...(opts.sonames ?? [])];
  for (const lib of libs) writeFileSync(join(libDir, lib), "");
  return { root, torchDir, libDir };
}

function location(source: LibtorchLocation["source"], lt: { torchDir: string; libDir: string }, version: string, cuda: string | null = null): LibtorchLocation {
  return { source, torchDir: lt.torchDir, libDir: lt.libDir, version, cuda };
}

function manifest(over: Partial<BinaryManifest>): BinaryManifest {
  return {
    addonVersion: "0.1.0",
    torchVersion: "2.11.0",
    variant: "cpu",
    cudaVersion: null,
    torchDir: "/gone/libtorch/share/cmake/Torch",
    torchLibDir: "/gone/libtorch/lib",
    platform: "Linux-x86_64",
    ...over,
  };
}

const candidate = (m: BinaryManifest | null, path = "/x/torchvid.node", origin: BinaryCandidate["origin"] = "prebuild"): BinaryCandidate => ({ path, origin, manifest: m });

describe("prebuild names", () => {
  it("encode variant and libtorch major.minor, and parse back", () => {
    assert.equal(prebuildFileName("cpu", "1.13.0"), "torchvid.cpu-libtorch1.13.napi.node");
    assert.equal(prebuildFileName("cuda", "2.11.0+cu130"), "torchvid.cuda-libtorch2.11.napi.node");
    assert.deepEqual(parsePrebuildName("/p/torchvid.cuda-libtorch2.11.napi.node"), { variant: "cuda", torch: [2, 11] });
    assert.equal(parsePrebuildName("torchvid.node"), null);
    assert.throws(() => prebuildFileName("cpu", "latest"), RangeError);
  });

  it("the sidecar is <file>.json, never a neighbour's torchvid.json", () => {
    const dir = newDir("sidecar");
    const node = join(dir, "torchvid.cpu-libtorch1.13.napi.node");
    writeFileSync(node, "");
    writeFileSync(join(dir, "torchvid.json"), JSON.stringify(manifest({ torchVersion: "9.9.0" })));
    assert.equal(readManifest(node), null);
    writeFileSync(join(dir, "torchvid.cpu-libtorch1.13.napi.json"), JSON.stringify(manifest({ torchVersion: "1.13.0" })));
    assert.equal(readManifest(node)?.torchVersion, "1.13.0");
    writeFileSync(join(dir, "torchvid.cpu-libtorch1.13.napi.json"), "{ not json");
    assert.equal(readManifest(node), null);
  });

  it("the committed CPU prebuild has its sidecar (libtorch 1.13, cpu, SONAMEs)", (t) => {
    const node = join(repo, "prebuilds", "linux-x64", "torchvid.cpu-libtorch1.13.napi.node");
    if (!existsSync(node)) return t.skip("no committed linux-x64 CPU prebuild");
    const m = readManifest(node);
    assert.equal(m?.variant, "cpu");
    assert.match(m!.torchVersion, /^1\.13\./);
    assert.ok(m!.torchLibs?.includes("libc10.so.1.13"), `torchLibs: ${m!.torchLibs}`);
    assert.match(m!.sourceHash ?? "", /^[0-9a-f]{16}$/);
    // Not a failure when C++ changed since: the loader then skips it as stale (tested below).
    if (m!.sourceHash !== sourceHash(repo)) t.skip(`the committed prebuild is stale (sources changed since): run \`npm run prebuilds\``);
  });

  it("the loader's source hash is the one scripts/prebuilds.mjs records", () => {
    const r = spawnSync(process.execPath, [join(repo, "scripts", "prebuilds.mjs"), "--source-hash"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), sourceHash(repo));
    assert.equal(sourceHash(newDir("no-sources")), null);
  });
});

describe("listBinaryCandidates", () => {
  it("orders a local build, then CUDA prebuilds, then the newest libtorch; TORCHVID_ADDON first", () => {
    const root = newDir("pkg");
    writeFileSync(join(root, "package.json"), JSON.stringify({ name: "torchvid" }));
    const pre = join(root, "prebuilds", platformDir);
    mkdirSync(pre, { recursive: true });
    for (const f of ["torchvid.cpu-libtorch1.13.napi.node", "torchvid.cpu-libtorch2.11.napi.node", "torchvid.cuda-libtorch2.11.napi.node", "torchvid.cuda-libtorch2.9.napi.node"]) {
      writeFileSync(join(pre, f), "");
    }
    writeFileSync(join(pre, "torchvid.cuda-libtorch2.11.napi.json"), JSON.stringify(manifest({ variant: "cuda", cudaVersion: "13.0" })));
    const names = (cs: BinaryCandidate[]) => cs.map((c) => `${c.origin}:${c.path.slice(root.length + 1)}`);
    assert.deepEqual(names(listBinaryCandidates(root, {})), [
      `prebuild:prebuilds/${platformDir}/torchvid.cuda-libtorch2.11.napi.node`,
      `prebuild:prebuilds/${platformDir}/torchvid.cuda-libtorch2.9.napi.node`,
      `prebuild:prebuilds/${platformDir}/torchvid.cpu-libtorch2.11.napi.node`,
      `prebuild:prebuilds/${platformDir}/torchvid.cpu-libtorch1.13.napi.node`,
    ]);
    assert.equal(listBinaryCandidates(root, {})[0]!.manifest?.variant, "cuda");

    mkdirSync(join(root, "build", "Release"), { recursive: true });
    writeFileSync(join(root, "build", "Release", "torchvid.node"), "");
    const explicit = join(root, "mine.node");
    writeFileSync(explicit, "");
    const all = names(listBinaryCandidates(root, { TORCHVID_ADDON: explicit }));
    assert.deepEqual(all.slice(0, 3), ["TORCHVID_ADDON:mine.node", "node-gyp-build:build/Release/torchvid.node", `prebuild:prebuilds/${platformDir}/torchvid.cuda-libtorch2.11.napi.node`]);
    assert.equal(all.length, 6);
    // A TORCHVID_ADDON that does not exist is not a candidate (load() reports it).
    assert.equal(names(listBinaryCandidates(root, { TORCHVID_ADDON: join(root, "missing.node") }))[0], "node-gyp-build:build/Release/torchvid.node");
  });
});

describe("matchLibtorch / planLoad", () => {
  const cpu211 = fakeLibtorch("2.11.0");
  const cuda211 = fakeLibtorch("2.11.0", { cuda: true });
  const cpu113 = fakeLibtorch("1.13.0");

  it("detects CUDA from python's report or from libtorch_cuda in the lib folder", () => {
    assert.equal(libtorchHasCuda(location("TORCHVID_LIBTORCH", cuda211, "2.11.0")), true);
    assert.equal(libtorchHasCuda(location("TORCHVID_LIBTORCH", cpu211, "2.11.0")), false);
    assert.equal(libtorchHasCuda(location("python3", cpu211, "2.11.0", "13.0")), true);
  });

  it("a CUDA build needs a CUDA libtorch of its version; a CPU build takes any of its version", () => {
    const cudaBuild = candidate(manifest({ variant: "cuda", cudaVersion: "13.0" }));
    const onlyCpu = matchLibtorch(cudaBuild, [location("TORCHVID_LIBTORCH", cpu211, "2.11.0")]);
    assert.equal(onlyCpu.libtorch, null);
    assert.match(onlyCpu.reason!, /built for CUDA libtorch 2\.11\.0 \(CUDA 13\.0\); libtorch 2\.11 without CUDA found/);
    const both = [location("TORCHVID_LIBTORCH", cpu211, "2.11.0"), location("python3", cuda211, "2.11.0", "13.0")];
    assert.equal(matchLibtorch(cudaBuild, both).libtorch?.libDir, cuda211.libDir);
    // Another CUDA major of the same torch is refused (libcudart.so.N differs).
    const cu12 = matchLibtorch(cudaBuild, [location("python3", cuda211, "2.11.0", "12.8")]);
    assert.match(cu12.reason!, /CUDA 12\.8 libtorch 2\.11 found/);
    // A CPU build runs on the CPU half of a CUDA libtorch.
    assert.equal(matchLibtorch(candidate(manifest({})), [location("python3", cuda211, "2.11.0", "13.0")]).libtorch?.libDir, cuda211.libDir);
  });

  it("on a CPU-only machine the CUDA prebuild is skipped with a reason and the CPU one is chosen", () => {
    const cands = [
      candidate(manifest({ variant: "cuda", cudaVersion: "13.0" }), "/p/torchvid.cuda-libtorch2.11.napi.node"),
      candidate(manifest({ torchVersion: "1.13.0", torchLibDir: "", torchDir: "/usr/lib/x86_64-linux-gnu/cmake/Torch" }), "/p/torchvid.cpu-libtorch1.13.napi.node"),
    ];
    const plan = planLoad(cands, [location("system", cpu113, "1.13.0")]);
    assert.match(plan[0]!.reason!, /built for CUDA libtorch 2\.11\.0.*no libtorch 2\.11 found.*found: 1\.13\.0 \(system/);
    assert.equal(plan[1]!.reason, undefined);
    assert.equal(plan[1]!.libtorch?.libDir, cpu113.libDir);
    assert.equal(plan[1]!.preload, false, "no rpath + system libtorch: the default library path has it");
    // With a CUDA libtorch 2.11 present the CUDA prebuild wins.
    const gpu = planLoad(cands, [location("TORCHVID_LIBTORCH", cuda211, "2.11.0"), location("system", cpu113, "1.13.0")]);
    assert.equal(gpu.findIndex((s) => !s.reason), 0);
    assert.equal(gpu[0]!.preload, true);
  });

  it("a version mismatch is skipped with a reason naming the expected and the found versions", () => {
    const m = matchLibtorch(candidate(manifest({ torchVersion: "2.11.0" })), [location("system", cpu113, "1.13.0"), location("Torch_DIR", fakeLibtorch("2.10.1"), "2.10.1")]);
    assert.equal(m.libtorch, null);
    assert.match(m.reason!, /built for libtorch 2\.11\.0, found: 1\.13\.0 \(system .*\), 2\.10\.1 \(Torch_DIR /);
    assert.match(matchLibtorch(candidate(manifest({})), []).reason!, /found: none/);
  });

  it("the rpath libtorch is used while it exists, unless it was replaced by another version", () => {
    const c = candidate(manifest({ torchLibDir: cpu211.libDir, torchDir: cpu211.torchDir }));
    const at = matchLibtorch(c, [location("python3", cpu211, "2.11.0")]);
    assert.equal(at.libtorch?.libDir, cpu211.libDir);
    assert.equal(needsPreload(c, at.libtorch), false);
    // Not among the libtorches found: still trusted (the rpath resolves it).
    assert.equal(matchLibtorch(c, []).libtorch?.libDir, cpu211.libDir);
    // `pip install -U torch` replaced it with 2.12 at the same path: refused.
    const replaced = matchLibtorch(c, [location("python3", cpu211, "2.12.0")]);
    assert.match(replaced.reason!, /built for libtorch 2\.11\.0, found: 2\.12\.0 \(python3/);
  });

  it("built against a libtorch that is gone, the same version elsewhere: chosen, with preload", () => {
    const c = candidate(manifest({ torchLibDir: "/gone/libtorch/lib" }));
    const elsewhere = location("TORCHVID_LIBTORCH", cpu211, "2.11.3");
    const [step] = planLoad([c], [location("system", cpu113, "1.13.0"), elsewhere]);
    assert.equal(step!.reason, undefined);
    assert.equal(step!.libtorch, elsewhere);
    assert.equal(step!.preload, true);
  });

  it("the right version with the wrong SONAMEs (Debian-built binary, libtorch download) is skipped", () => {
    const debianBuilt = candidate(manifest({ torchVersion: "1.13.0", torchLibDir: "", torchLibs: ["libc10.so.1.13", "libtorch_cpu.so.1.13"] }));
    const download = fakeLibtorch("1.13.1");
    const m = matchLibtorch(debianBuilt, [location("TORCHVID_LIBTORCH", download, "1.13.1")]);
    assert.match(m.reason!, /lacks libc10\.so\.1\.13/);
    const debianLike = fakeLibtorch("1.13.0", { sonames: ["libc10.so.1.13", "libtorch_cpu.so.1.13"] });
    const ok = planLoad([debianBuilt], [location("TORCHVID_LIBTORCH", download, "1.13.1"), location("Torch_DIR", debianLike, "1.13.0")]);
    assert.equal(ok[0]!.libtorch?.libDir, debianLike.libDir);
    assert.equal(ok[0]!.preload, true);
  });

  it("a prebuild built from other sources is skipped as stale", () => {
    const c = candidate(manifest({ sourceHash: "aaaaaaaaaaaaaaaa" }));
    const libs = [location("TORCHVID_LIBTORCH", cpu211, "2.11.0")];
    assert.match(planLoad([c], libs, "bbbbbbbbbbbbbbbb")[0]!.reason!, /stale: built from other sources \(aaaaaaaaaaaaaaaa; these are bbbbbbbbbbbbbbbb\).*npm run prebuilds/);
    assert.equal(planLoad([c], libs, "aaaaaaaaaaaaaaaa")[0]!.reason, undefined);
    assert.equal(planLoad([c], libs, null)[0]!.reason, undefined, "no sources beside the binaries: no check");
    assert.equal(planLoad([candidate(manifest({}))], libs, "bbbbbbbbbbbbbbbb")[0]!.reason, undefined, "no recorded hash (a local build): no check");
  });

  it("an unlabelled local build runs against the first libtorch found", () => {
    const [step] = planLoad([candidate(null, "/b/build/Release/torchvid.node", "node-gyp-build")], [location("system", cpu113, "1.13.0")]);
    assert.equal(step!.reason, undefined);
    assert.equal(step!.preload, false);
  });

  it("nothing usable: a NativeLoadError with the platform, every reason and the fix", () => {
    const plan = planLoad([candidate(manifest({ variant: "cuda", cudaVersion: "13.0" }), "/p/torchvid.cuda-libtorch2.11.napi.node")], [location("system", cpu113, "1.13.0")]);
    const err = nativeLoadError(plan.map((s) => `${s.candidate.path}: ${s.reason}`));
    assert.ok(err instanceof NativeLoadError);
    assert.equal(err.code, "ERR_TORCHVID_NATIVE_LOAD");
    assert.ok(err.message.includes(`${process.platform}-${process.arch}`), err.message);
    assert.ok(err.message.includes(process.version));
    assert.match(err.message, /torchvid\.cuda-libtorch2\.11\.napi\.node: built for CUDA libtorch 2\.11\.0/);
    assert.match(err.message, /npm run setup/);
    assert.match(err.message, /TORCHVID_LIBTORCH/);
    assert.match(nativeLoadError([], "/some/root").message, /no torchvid\.node found under \/some\/root/);
  });
});

/** Runs the real loader in a child process against a package root of our making. */
function loadInChild(env: Record<string, string>, code = "m.native(); console.log('LOADED ' + JSON.stringify(m.loadedBinary()))") {
  const script = `import('./lib/native.ts').then((m) => { try { ${code} } catch (e) { console.log('CAUGHT ' + e.name + ' ' + e.code); console.log(e.message) } })`;
  const { TORCHVID_ADDON: _a, TORCHVID_LIBTORCH: _b, Torch_DIR: _c, PREBUILDS_ONLY: _d, ...base } = process.env;
  // TORCHVID_PYTHON=/nonexistent: no slow python3 lookup, no python libtorch either.
  return spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: repo, encoding: "utf8", env: { ...base, TORCHVID_PYTHON: "/nonexistent/python3", ...env }, timeout: 60_000 });
}

function assertCleanFailure(r: ReturnType<typeof loadInChild>) {
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^CAUGHT NativeLoadError ERR_TORCHVID_NATIVE_LOAD$/m, r.stdout + r.stderr);
  assert.ok(r.stdout.includes(`${process.platform}-${process.arch}`));
  assert.match(r.stdout, /npm run setup/);
}

describe("loading in a child process", () => {
  it("TORCHVID_ADDON=/nonexistent and nothing else: a clear NativeLoadError, normal exit", () => {
    const root = newDir("empty-pkg");
    const r = loadInChild({ TORCHVID_ADDON: "/nonexistent/torchvid.node", TORCHVID_PACKAGE_ROOT: root });
    assertCleanFailure(r);
    assert.match(r.stdout, /TORCHVID_ADDON=\/nonexistent\/torchvid\.node: no such file/);
    assert.ok(r.stdout.includes(`no torchvid.node found under ${root}`), r.stdout);
  });

  it("a corrupt .node (random bytes): a clear NativeLoadError naming the file, normal exit", () => {
    const root = newDir("corrupt-pkg");
    const bad = join(root, "corrupt.node");
    writeFileSync(bad, randomBytes(4096));
    const r = loadInChild({ TORCHVID_ADDON: bad, TORCHVID_PACKAGE_ROOT: root });
    assertCleanFailure(r);
    assert.ok(r.stdout.includes(`${bad}: `), r.stdout);
  });

  it("a corrupt prebuild whose sidecar matches a real libtorch elsewhere: preloaded, then a clean error", (t) => {
    const system = findLibtorchCandidates({ python: false, env: {} }).find((l) => l.source === "system");
    if (!system?.libDir || !system.version) return t.skip("no system libtorch here");
    const root = newDir("corrupt-prebuild-pkg");
    const pre = join(root, "prebuilds", platformDir);
    mkdirSync(pre, { recursive: true });
    const name = prebuildFileName("cpu", system.version);
    writeFileSync(join(pre, name), randomBytes(8192));
    writeFileSync(join(pre, name.replace(/\.node$/, ".json")), JSON.stringify(manifest({ torchVersion: system.version, torchLibDir: "/gone/libtorch/lib" })));
    const r = loadInChild({ TORCHVID_PACKAGE_ROOT: root });
    assertCleanFailure(r);
    assert.ok(r.stdout.includes(join(pre, name)), r.stdout);
  });

  it("a prebuild for a libtorch that is not here is never dlopened: the reason names both versions", () => {
    const root = newDir("mismatch-pkg");
    const pre = join(root, "prebuilds", platformDir);
    mkdirSync(pre, { recursive: true });
    // Random bytes: had the loader dlopened it, the reason would be an ELF error instead.
    writeFileSync(join(pre, "torchvid.cuda-libtorch9.9.napi.node"), randomBytes(1024));
    writeFileSync(join(pre, "torchvid.cuda-libtorch9.9.napi.json"), JSON.stringify(manifest({ torchVersion: "9.9.0", variant: "cuda", cudaVersion: "13.0" })));
    const r = loadInChild({ TORCHVID_PACKAGE_ROOT: root });
    assertCleanFailure(r);
    assert.match(r.stdout, /torchvid\.cuda-libtorch9\.9\.napi\.node: built for CUDA libtorch 9\.9\.0 \(CUDA 13\.0\); no libtorch 9\.9 found/);
  });

  it("the committed CPU prebuild loads from a fresh package root, rpath libtorch gone => preloaded", (t) => {
    const src = join(repo, "prebuilds", "linux-x64", "torchvid.cpu-libtorch1.13.napi.node");
    const system = findLibtorchCandidates({ python: false, env: {} }).find((l) => l.source === "system");
    if (platformDir !== "linux-x64" || !existsSync(src)) return t.skip("no committed prebuild for this platform");
    if (!system || !/^1\.13\./.test(system.version ?? "")) return t.skip("no system libtorch 1.13 here");
    const root = newDir("prebuild-pkg");
    const pre = join(root, "prebuilds", platformDir);
    mkdirSync(pre, { recursive: true });
    copyFileSync(src, join(pre, "torchvid.cpu-libtorch1.13.napi.node"));
    const m = JSON.parse(readFileSync(src.replace(/\.node$/, ".json"), "utf8")) as BinaryManifest;
    writeFileSync(join(pre, "torchvid.cpu-libtorch1.13.napi.json"), JSON.stringify({ ...m, torchLibDir: "/gone/libtorch/lib" }));
    const r = loadInChild({ TORCHVID_PACKAGE_ROOT: root }, "const n = m.native(); const b = m.loadedBinary(); console.log('LOADED ' + JSON.stringify({ origin: b.origin, path: b.path, preloaded: b.preloaded, source: b.libtorch?.source, torch: n.info().torchVersion }))");
    assert.equal(r.status, 0, r.stderr);
    const line = r.stdout.split("\n").find((l) => l.startsWith("LOADED "));
    assert.ok(line, r.stdout + r.stderr);
    const got = JSON.parse(line.slice(7));
    assert.deepEqual(got, { origin: "prebuild", path: join(pre, "torchvid.cpu-libtorch1.13.napi.node"), preloaded: true, source: "system", torch: m.torchVersion });
  });

  it("beside sources, a prebuild loads only when built from them (else: stale, clean error)", (t) => {
    const src = join(repo, "prebuilds", "linux-x64", "torchvid.cpu-libtorch1.13.napi.node");
    const system = findLibtorchCandidates({ python: false, env: {} }).find((l) => l.source === "system");
    if (platformDir !== "linux-x64" || !existsSync(src) || !/^1\.13\./.test(system?.version ?? "")) return t.skip("needs the linux-x64 prebuild and a system libtorch 1.13");
    const root = newDir("sources-pkg");
    for (const f of ["CMakeLists.txt", "src", "binding"]) cpSync(join(repo, f), join(root, f), { recursive: true });
    const pre = join(root, "prebuilds", platformDir);
    mkdirSync(pre, { recursive: true });
    copyFileSync(src, join(pre, "torchvid.cpu-libtorch1.13.napi.node"));
    const m = JSON.parse(readFileSync(src.replace(/\.node$/, ".json"), "utf8")) as BinaryManifest;
    const sidecar = join(pre, "torchvid.cpu-libtorch1.13.napi.json");
    writeFileSync(sidecar, JSON.stringify({ ...m, sourceHash: sourceHash(root) }));
    const ok = loadInChild({ TORCHVID_PACKAGE_ROOT: root });
    assert.match(ok.stdout, /^LOADED .*"origin":"prebuild"/m, ok.stdout + ok.stderr);
    writeFileSync(sidecar, JSON.stringify({ ...m, sourceHash: "0123456789abcdef" }));
    const stale = loadInChild({ TORCHVID_PACKAGE_ROOT: root });
    assertCleanFailure(stale);
    assert.match(stale.stdout, /torchvid\.cpu-libtorch1\.13\.napi\.node: stale: built from other sources \(0123456789abcdef; these are [0-9a-f]{16}\)/);
  });
});

describe("lib/find-libtorch.mjs order", () => {
  const a = fakeLibtorch("2.11.0", { cuda: true }); // TORCHVID_LIBTORCH (e.g. a pip torch package root)
  const b = fakeLibtorch("2.10.0"); // Torch_DIR
  const c = fakeLibtorch("2.9.1"); // python3's torch
  /** A python3 stand-in that answers find-libtorch's question (version, cmake prefix, lib dir, CUDA). */
  function fakePython(lt: { root: string; libDir: string }, version: string, cuda: string, ok = true): string {
    const file = join(newDir("python"), "python3");
    writeFileSync(file, ok ? `#!/bin/sh\nprintf '%s\\n' '${version}' '${join(lt.root, "share", "cmake")}' '${lt.libDir}' '${cuda}'\n` : "#!/bin/sh\necho 'No module named torch' >&2\nexit 1\n");
    chmodSync(file, 0o755);
    return file;
  }
  const python = fakePython(c, "2.9.1+cu126", "12.6");
  const systemFound = findLibtorchCandidates({ python: false, env: {} }).filter((l) => l.source === "system");

  it("TORCHVID_LIBTORCH, then Torch_DIR, then python3, then the system", () => {
    const found = findLibtorchCandidates({ env: { TORCHVID_LIBTORCH: a.root, Torch_DIR: b.torchDir }, python });
    assert.deepEqual(
      found.map((l) => l.source),
      ["TORCHVID_LIBTORCH", "Torch_DIR", "python3", ...systemFound.map(() => "system")],
    );
    assert.deepEqual(found[0], { source: "TORCHVID_LIBTORCH", torchDir: a.torchDir, libDir: a.libDir, version: "2.11.0", cuda: null });
    assert.deepEqual(found[1], { source: "Torch_DIR", torchDir: b.torchDir, libDir: b.libDir, version: "2.10.0", cuda: null });
    assert.deepEqual(found[2], { source: "python3", torchDir: c.torchDir, libDir: c.libDir, version: "2.9.1", cuda: "12.6" });
    assert.equal(findLibtorch({ env: { TORCHVID_LIBTORCH: a.root, Torch_DIR: b.torchDir }, python })?.source, "TORCHVID_LIBTORCH");
    // TORCHVID_LIBTORCH given a pip torch package root: its CUDA shows through libtorch_cuda.
    assert.equal(libtorchHasCuda(found[0]!), true);
  });

  it("each source falls through to the next when absent", () => {
    assert.equal(findLibtorch({ env: { Torch_DIR: b.torchDir }, python })?.source, "Torch_DIR");
    assert.equal(findLibtorch({ env: {}, python })?.source, "python3");
    assert.equal(findLibtorch({ env: {}, python: fakePython(c, "", "", false) })?.source ?? null, systemFound.length ? "system" : null);
    assert.equal(findLibtorch({ env: {}, python: false })?.source ?? null, systemFound.length ? "system" : null);
  });
});
