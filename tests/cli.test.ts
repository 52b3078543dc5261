import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { formatTable } from "../lib/cli/bench.ts";
import { parseLora, parseSeed, UsageError } from "../lib/cli/common.ts";
import { runNode } from "./helpers/run-node.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(repo, "bin", "torchvid.js");
const root = mkdtempSync(join(tmpdir(), "torchvid-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a user would, from `cwd` (a scratch folder by default), without a TTY. */
function torchvid(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return runNode([bin, ...args], { cwd: options.cwd ?? root, env: options.env });
}

/** A usage error: exit 2, one message line plus the --help pointer, no stack. */
function assertUsage(r: Result, message: RegExp, command?: string): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0]!, /^torchvid: /);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], `Run \`torchvid ${command ? `${command} ` : ""}--help\` for usage.`);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

/** A runtime failure: exit 1, the error in one last line, no stack. */
function assertFailure(r: Result, message: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n");
  assert.match(lines.at(-1)!, message);
  assert.match(lines.at(-1)!, /\(--verbose for details\)$/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

describe("torchvid --help", () => {
  it("lists the commands and exits 0", async () => {
    const r = await torchvid(["--help"]);
    assert.equal(r.code, 0);
    for (const c of ["generate [prompt]", "upscale <input>", "convert [src] [dst]", "info", "bench"]) assert.ok(r.stdout.includes(`torchvid ${c}`), c);
  });

  it("every command has examples", async () => {
    for (const c of ["generate", "upscale", "convert", "info", "bench"]) {
      const r = await torchvid([c, "--help"]);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, /Examples:\n\s+torchvid /, c);
    }
  });

  it("--version prints the package version", async () => {
    const r = await torchvid(["--version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
  });
});

describe("usage errors exit 2 with one line", { concurrency: 4 }, () => {
  // Each case spawns a CLI; run them side by side.
  const cases: [string[], RegExp, string?][] = [
    [[], /Pass a command: generate, upscale, convert, info, bench, pull, cache, serve, worker, submit, jobs/],
    [["frobnicate"], /Unknown argument: frobnicate/],
    [["generate", "a cat", "--bogus"], /Unknown argument: bogus/, "generate"],
    [["generate"], /Pass the text to render, e\.g\. torchvid generate "a red panda eating bamboo", or a prompt file with --prompts FILE/, "generate"],
    [["upscale", "in.mp4", "-o", "out.mp4"], /Missing required argument: prompt/, "upscale"],
    [["generate", "a cat", "--frames", "0"], /--frames must be an integer between 1 and 1024, got 0/, "generate"],
    [["generate", "a cat", "--width", "250"], /--width must be a multiple of 8 .*got 250; try 248 or 256/, "generate"],
    [["generate", "a cat", "--height", "100"], /--height must be a multiple of 8/, "generate"],
    [["generate", "a cat", "--scheduler", "warp"], /Unknown scheduler "warp": choose one of ddim, dpm\+\+, euler, euler-a, unipc, pndm, lms, ddpm, heun, lcm/, "generate"],
    [["generate", "a cat", "--dtype", "int8"], /Invalid values: Argument: dtype, Given: "int8"/, "generate"],
    [["generate", "a cat", "--seed", "-3"], /--seed must be a non-negative integer/, "generate"],
    [["generate", "a cat", "--steps", "nope"], /--steps must be an integer/, "generate"],
    [["generate", "  "], /The prompt is empty/, "generate"],
    [["upscale", "in.mp4", "-o", "o.mp4", "--prompt", "x", "--strength", "1.5"], /--strength must be a number between 0 and 1/, "upscale"],
    [["upscale", "in.mp4", "-o", "o.mp4", "--prompt", "x", "--resize", "squash"], /Invalid values: Argument: resize/, "upscale"],
  ];
  for (const [args, message, command] of cases) {
    it(`torchvid ${args.join(" ") || "(nothing)"}`, async () => assertUsage(await torchvid(args), message, command));
  }

  it("an output extension we cannot write lists the supported ones", async () => {
    assertUsage(await torchvid(["generate", "a cat", "-o", "clip.avi"]), /unsupported extension "\.avi"; supported: \.mp4, \.webm, \.gif, \.webp/, "generate");
  });

  it("convert: wrong positionals, unknown random model", async () => {
    assertUsage(await torchvid(["convert"]), /Pass a source checkpoint folder and an output folder/, "convert");
    assertUsage(await torchvid(["convert", "--random", "huge", "out"]), /Unknown --random model "huge": choose one of tiny, ms-1\.7b, zeroscope-576w/, "convert");
  });
});

describe("runtime errors exit 1 with one line", () => {
  it("missing model folder says to run torchvid convert", async () => {
    const r = await torchvid(["generate", "a cat", "--model", join(root, "no-model")]);
    assertFailure(r, /^torchvid: Model folder .*no-model not found: run `torchvid convert SRC DST` first/);
  });

  it("unwritable output path is caught before any work", async () => {
    assertFailure(await torchvid(["generate", "a cat", "-o", join(root, "missing-dir", "x.mp4")]), /Cannot write .*x\.mp4: folder .*missing-dir does not exist/);
  });

  it("undecodable input video", async () => {
    const model = join(root, "fake-model");
    mkdirSync(model, { recursive: true });
    const bad = join(root, "bad.mp4");
    writeFileSync(bad, "not a video at all");
    const r = await torchvid(["upscale", bad, "-o", join(root, "up.mp4"), "--prompt", "x", "--model", model]);
    assertFailure(r, /^torchvid: Cannot decode video .*bad\.mp4: .*Invalid data/);
    assert.equal(existsSync(join(root, "up.mp4")), false);
  });

  it("--verbose shows the stack; --json adds an error event on stdout", async () => {
    const v = await torchvid(["generate", "a cat", "--model", join(root, "nope"), "--verbose"]);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /^\s+at /m);
    const j = await torchvid(["generate", "a cat", "--model", join(root, "nope"), "--json"]);
    assert.equal(j.code, 1);
    const event = JSON.parse(j.stdout.trim().split("\n").at(-1)!);
    assert.equal(event.event, "error");
    assert.equal(event.exitCode, 1);
    assert.match(event.message, /Model folder/);
  });

  it("convert with a python that has no torch says so", async () => {
    const r = await torchvid(["convert", "--random", "tiny", join(root, "m"), "--python", join(root, "no-python")]);
    assertFailure(r, /--python .*no-python cannot import torch \(not found\)/);
  });
});

describe("info", () => {
  it("prints the ffmpeg in use and the native status (JSON too)", async () => {
    const r = await torchvid(["info", "--json"]);
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(typeof info.torchvid, "string");
    assert.ok(info.media.ffmpeg.path, JSON.stringify(info.media));
    assert.ok(info.native, "native section present (info or error)");
    const text = await torchvid(["info"]);
    assert.match(text.stdout, /ffmpeg:\n\s+path: /);
  });
});

describe("convert --random (when the converter and a python with torch are here)", () => {
  const hasConverter = existsSync(join(repo, "tools", "convert", "__main__.py"));
  const python = ["python3", "/usr/bin/python3"].find((p) => spawnSync(p, ["-c", "import torch"]).status === 0);
  const skip = !hasConverter ? "tools/convert/__main__.py not written yet" : !python ? "no python3 with torch" : false;
  it("writes a random checkpoint, then converts it into a model folder", { skip, timeout: 300_000 }, async () => {
    const ckpt = join(root, "tiny-ckpt");
    const r = await torchvid(["convert", "--random", "tiny", ckpt, "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(ckpt, "model_index.json")));
    const model = join(root, "tiny-model");
    const c = await torchvid(["convert", ckpt, model, "--quiet"]);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(existsSync(join(model, "manifest.json")));
    assert.ok(existsSync(join(model, "unet.pt")));
  });
});

describe("argument helpers", () => {
  it("parseLora splits FILE[:scale]", () => {
    assert.deepEqual(parseLora("a.safetensors"), { path: "a.safetensors", scale: 1 });
    assert.deepEqual(parseLora("a.safetensors:0.7"), { path: "a.safetensors", scale: 0.7 });
    assert.deepEqual(parseLora("C:/x/a.safetensors:-.5"), { path: "C:/x/a.safetensors", scale: -0.5 });
  });

  it("parseSeed keeps big seeds exact", () => {
    assert.equal(parseSeed("42"), 42);
    assert.equal(parseSeed("18446744073709551615"), 18446744073709551615n);
    assert.equal(parseSeed(undefined), undefined);
    assert.throws(() => parseSeed("1.5"), UsageError);
    assert.throws(() => parseSeed("18446744073709551616"), /below 2\^64/);
  });

  it("formatTable aligns columns", () => {
    assert.equal(formatTable([{ name: "ddim", ms: 12.3456 }, { name: "euler-a", ms: 7 }]), "name     ms\n-------  ------\nddim     12.346\neuler-a  7");
  });
});

describe("the CLI's scheduler list", () => {
  it("matches lib/schedulers' SCHEDULER_NAMES", async (t) => {
    const { SCHEDULER_NAMES: cliNames, schedulerShortName } = await import("../lib/cli/run-pipeline.ts");
    let mod: { SCHEDULER_NAMES?: Record<string, { name: string }> };
    try {
      mod = (await import(new URL("../lib/schedulers/index.ts", import.meta.url).href)) as typeof mod;
    } catch (err) {
      t.skip(`lib/schedulers/index.ts does not load here: ${(err as Error).message.split("\n")[0]}`);
      return;
    }
    if (!mod.SCHEDULER_NAMES) return t.skip("lib/schedulers/index.ts has no SCHEDULER_NAMES");
    assert.deepEqual([...cliNames].sort(), Object.keys(mod.SCHEDULER_NAMES).sort());
    // And the class each name stands for, which --json results report.
    for (const [name, cls] of Object.entries(mod.SCHEDULER_NAMES)) assert.equal(schedulerShortName(cls.name), name, cls.name);
  });
});
