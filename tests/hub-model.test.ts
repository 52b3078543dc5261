/**
 * A model id end to end: a checkpoint already in the Hugging Face cache runs by id with
 * HF_HUB_OFFLINE=1, is converted once into TORCHVID_CACHE (the second run loads it directly),
 * two processes wanting it at once convert it once, and without Python torch the error says what
 * to install. Needs python3 with torch (the converter) and the native addon, like the other
 * model tests.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { downloadCheckpoint } from "../lib/hub/download.ts";
import { listConverted } from "../lib/hub/model-cache.ts";
import { resolveModel } from "../lib/hub/resolve.ts";
import { fakeCommit, readRepoFolder, startFakeHub } from "./helpers/fake-hub.ts";
import { referenceCheckpoint } from "./helpers/reference-model.ts";
import { runNode } from "./helpers/run-node.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = mkdtempSync(join(tmpdir(), "torchvid-hub-model-"));
const hfCache = join(root, "hf");
const commit = fakeCommit("acme/t2v");
after(() => rmSync(root, { recursive: true, force: true }));

before(async () => {
  // Fill the Hugging Face cache once, as a Python user's earlier download would have.
  const hub = await startFakeHub({ "acme/t2v": { files: readRepoFolder(referenceCheckpoint), commit } });
  try {
    await downloadCheckpoint("acme/t2v", { hubUrl: hub.url, cacheDir: hfCache });
  } finally {
    await hub.close();
  }
});

function run(cmd: string[], env: NodeJS.ProcessEnv, cwd = root): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(cmd, { cwd, env });
}

const events = (stdout: string) => stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe("a model id from the Hugging Face cache, offline", () => {
  const torchvidCache = join(root, "tv");
  const env = { HF_HUB_CACHE: hfCache, HF_HUB_OFFLINE: "1", TORCHVID_CACHE: torchvidCache, HF_ENDPOINT: "http://127.0.0.1:9" };
  const generate = (out: string) =>
    run([join(repoRoot, "bin", "torchvid.js"), "generate", "a cat", "--model", "acme/t2v", "--steps", "2", "--frames", "2", "--seed", "1", "-o", out, "--json"], env);

  it("generates by id, converting once into TORCHVID_CACHE", async () => {
    const first = await generate("a.gif");
    assert.equal(first.code, 0, first.stderr);
    const ev1 = events(first.stdout);
    assert.ok(ev1.some((e) => e.event === "convert"), "the first run converts");
    const result = ev1.find((e) => e.event === "result")!;
    assert.equal(result.numFrames, 2);
    assert.ok(statSync(join(root, "a.gif")).size > 0);

    const cached = await listConverted(torchvidCache);
    assert.equal(cached.length, 1);
    assert.deepEqual([cached[0]!.repo, cached[0]!.commit, cached[0]!.dtype, cached[0]!.variant], ["acme/t2v", commit, "float32", undefined]);
    assert.equal(result.model, cached[0]!.dir, "the run loaded the cached folder");
    const made = statSync(join(cached[0]!.dir, "manifest.json")).mtimeMs;

    const second = await generate("b.gif");
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!events(second.stdout).some((e) => e.event === "convert"), "the second run does not convert again");
    assert.equal(statSync(join(cached[0]!.dir, "manifest.json")).mtimeMs, made);
  });

  it("two processes at once: one converts, the other waits and uses its folder", async () => {
    const fresh = join(root, "tv-race");
    const script = `import { resolveModel } from ${JSON.stringify(join(repoRoot, "lib", "hub", "resolve.ts"))};
      const seen = [];
      const r = await resolveModel("acme/t2v", { onHubProgress: (e) => seen.push(e.kind) });
      console.log(JSON.stringify({ dir: r.dir, converted: seen.includes("convert"), waited: seen.includes("wait") }));`;
    const start = () => run(["--import", "tsx", "--input-type=module", "-e", script], { ...env, TORCHVID_CACHE: fresh }, repoRoot); // tsx resolves from the repo
    const [a, b] = await Promise.all([start(), start()]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const ra = JSON.parse(a.stdout.trim().split("\n").at(-1)!);
    const rb = JSON.parse(b.stdout.trim().split("\n").at(-1)!);
    assert.equal(ra.dir, rb.dir);
    assert.equal(Number(ra.converted) + Number(rb.converted), 1, `exactly one process converts (a: ${JSON.stringify(ra)}, b: ${JSON.stringify(rb)})`);
    assert.equal((await listConverted(fresh)).length, 1);
    assert.ok(existsSync(join(ra.dir, "manifest.json")));
  });

  it("without Python torch, the error says what to install", async () => {
    const prev = { ...process.env };
    Object.assign(process.env, env, { TORCHVID_CACHE: join(root, "tv-nopython") });
    try {
      await assert.rejects(resolveModel("acme/t2v", { python: "/bin/false" }), (err: Error) => {
        assert.match(err.message, /acme\/t2v is converted once into a torchvid model folder, and the converter needs Python 3 with torch >= 1\.13/);
        assert.match(err.message, /pip install torch/);
        return true;
      });
      assert.deepEqual(await listConverted(join(root, "tv-nopython")), []);
    } finally {
      for (const k of Object.keys(env)) if (prev[k] === undefined) delete process.env[k];
      Object.assign(process.env, prev);
    }
  });
});
