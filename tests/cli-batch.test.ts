/**
 * CLI polish from issue 11, run as a user would (spawned): did-you-mean for a typo'd flag,
 * `--prompts FILE` (plain lines and JSONL checked by checkGenerateRequest), `--num-videos`, the
 * scheduler named in `--json` results, and `pull` / `cache` usage errors.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = mkdtempSync(join(tmpdir(), "torchvid-cli-batch-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** The CLI from the TypeScript source (not a possibly stale dist/), in `root`. */
function torchvid(args: string[], env: NodeJS.ProcessEnv = {}) {
  const code = `process.exitCode = await (await import(${JSON.stringify(join(repo, "lib", "cli.ts"))})).main(${JSON.stringify(args)}); setTimeout(() => process.exit(), 2000).unref();`;
  return spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), "--input-type=module", "-e", code], { cwd: root, encoding: "utf8", env: { ...process.env, ...env } });
}

describe("usage errors", () => {
  it("a typo'd flag gets the flag it meant", () => {
    const r = torchvid(["generate", "a cat", "--stpes", "3", "--frmes", "2"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Unknown arguments: stpes, frmes \(stpes: did you mean --steps\?; frmes: did you mean --frames\?\)/);
  });

  it("a flag far from every known one gets no guess", () => {
    const r = torchvid(["generate", "a cat", "--zzzzzz"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Unknown argument: zzzzzz\n/);
  });

  it("a bad JSONL line names the file, the line and the field", () => {
    writeFileSync(join(root, "bad.jsonl"), 'a plain prompt\n\n{"prompt": "x", "numInferenceStep": 3}\n');
    const r = torchvid(["generate", "--prompts", "bad.jsonl"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.jsonl line 3: Unknown field "numInferenceStep"; known fields: prompt, .*numInferenceSteps/);
    writeFileSync(join(root, "bad2.jsonl"), '{"prompt": "x", "model": "other/model"}\n');
    assert.match(torchvid(["generate", "--prompts", "bad2.jsonl"]).stderr, /bad2\.jsonl line 1: "model" cannot change per line/);
  });

  it("a prompt and --prompts together, or pull with a path, are usage errors", () => {
    writeFileSync(join(root, "p.txt"), "a cat\n");
    assert.match(torchvid(["generate", "a cat", "--prompts", "p.txt"]).stderr, /Pass a prompt or --prompts FILE, not both/);
    const pull = torchvid(["pull", "./some/folder"]);
    assert.equal(pull.status, 2);
    assert.match(pull.stderr, /"\.\/some\/folder" is not a Hub model id: pass org\/name/);
  });

  it("cache list on an empty cache says how to fill it", () => {
    const r = torchvid(["cache", "list"], { TORCHVID_CACHE: join(root, "empty-cache") });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No converted models yet: `torchvid pull org\/name`/);
  });
});

const model = join(repo, "models", "tiny");
describe("batches on the default model", { skip: existsSync(join(model, "manifest.json")) ? false : "models/tiny missing: run `npm run setup`" }, () => {
  it("--prompts JSONL x --num-videos 2: numbered outputs, per-line options, the scheduler named", () => {
    writeFileSync(join(root, "p.jsonl"), 'a cat\n{"prompt": "a dog", "seed": 7, "numFrames": 3}\n');
    mkdirSync(join(root, "clips"));
    const r = torchvid(["generate", "--prompts", "p.jsonl", "--num-videos", "2", "--frames", "2", "--steps", "2", "--seed", "100", "-o", "clips/o.gif", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const results = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.event === "result");
    assert.deepEqual(
      results.map((e) => [e.output, e.prompt, e.seed, e.numFrames, e.scheduler, e.schedulerClass]),
      [
        [join(root, "clips/o-001-1.gif"), "a cat", 100, 2, "ddim", "DDIMScheduler"],
        [join(root, "clips/o-001-2.gif"), "a cat", 100, 2, "ddim", "DDIMScheduler"],
        [join(root, "clips/o-002-1.gif"), "a dog", 7, 3, "ddim", "DDIMScheduler"],
        [join(root, "clips/o-002-2.gif"), "a dog", 7, 3, "ddim", "DDIMScheduler"],
      ],
    );
    assert.deepEqual(readdirSync(join(root, "clips")).sort(), ["o-001-1.gif", "o-001-2.gif", "o-002-1.gif", "o-002-2.gif"]);
  });
});
