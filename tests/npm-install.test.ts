/**
 * The package as npm users get it: `npm pack`, `npm install <tarball>` into an empty project,
 * then `npx torchvid generate "a cat" -o cat.mp4` on the shipped default model with no other
 * step. Needs the npm registry (the package's dependencies are installed from it) and takes
 * about a minute; TORCHVID_TEST_SKIP_NPM_INSTALL=1 skips it (saying so) where there is no registry.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = mkdtempSync(join(tmpdir(), "torchvid-npm-"));
after(() => rmSync(root, { recursive: true, force: true }));
const skip = process.env.TORCHVID_TEST_SKIP_NPM_INSTALL ? "TORCHVID_TEST_SKIP_NPM_INSTALL is set" : false;

const npm = (args: string[], cwd: string) => {
  const r = spawnSync("npm", args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" } });
  assert.equal(r.status, 0, `npm ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

describe("npm install torchvid into an empty project", { skip, timeout: 600_000 }, () => {
  const project = join(root, "project");
  let tarball = "";

  it("packs the package with what the installed CLI needs", () => {
    const out = JSON.parse(npm(["pack", "--json", "--pack-destination", root], repoRoot)) as { filename: string; size: number; files: { path: string }[] }[];
    tarball = join(root, out[0]!.filename);
    const files = new Set(out[0]!.files.map((f) => f.path));
    for (const f of ["dist/cli.js", "dist/index.d.ts", "bin/torchvid.js", "models/tiny/manifest.json", "models/tiny/unet.pt", "docs/cli-and-video.md", "tools/convert/__main__.py"]) {
      assert.ok(files.has(f), `${f} is in the tarball`);
    }
    assert.ok(![...files].some((f) => f.startsWith("tests/") || f.startsWith("bench/")), "no tests or benchmarks in the package");
    assert.ok([...files].some((f) => f.startsWith("prebuilds/linux-x64/") && f.endsWith(".node")), "the CPU prebuild is shipped");
  });

  it("installs and generates with the default model, no other step", () => {
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "try-torchvid", version: "1.0.0", private: true, type: "module" }));
    npm(["install", "--prefer-offline", tarball], project);
    const gen = spawnSync("npx", ["--no-install", "torchvid", "generate", "a cat", "-o", "cat.mp4", "--steps", "4", "--json"], { cwd: project, encoding: "utf8" });
    assert.equal(gen.status, 0, `${gen.stdout}\n${gen.stderr}`);
    const result = gen.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.event === "result");
    assert.equal(result.model, join(project, "node_modules", "torchvid", "models", "tiny"));
    assert.equal(result.numFrames, 16);
    const mp4 = readFileSync(join(project, "cat.mp4"));
    assert.equal(mp4.subarray(4, 8).toString("latin1"), "ftyp", "an MP4 file");
  });

  it("the installed types compile against the declared dependencies", () => {
    writeFileSync(join(project, "use.ts"), `import { TextToVideoSDPipeline, type HubOptions } from "torchvid";\nconst o: HubOptions = { variant: "fp16" };\nexport const load = () => TextToVideoSDPipeline.fromPretrained("damo-vilab/text-to-video-ms-1.7b", o);\n`);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true }, files: ["use.ts"] }));
    const tsc = spawnSync(process.execPath, [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "."], { cwd: project, encoding: "utf8" });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });

  it("does not offer the benchmark, which is not in the package", () => {
    const r = spawnSync("npx", ["--no-install", "torchvid", "bench"], { cwd: project, encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /Unknown (argument|command)/i);
    assert.ok(existsSync(join(project, "node_modules", "torchvid", "dist")) && !readdirSync(join(project, "node_modules", "torchvid")).includes("bench"));
  });
});
