// The job queue's parts that need no Redis: Redis URLs, the filesystem result store (atomic,
// one result per job id, a killed worker's temp files swept), job ids as file names, and the
// `torchvid jobs` table.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { formatJobs } from "../lib/cli/jobs.ts";
import { parseRedisUrl, redactUrl } from "../lib/jobs/connection.ts";
import { checkJobIdForFile, FileResultStore } from "../lib/jobs/file-store.ts";
import type { JobSidecar } from "../lib/jobs/result-store.ts";

const root = mkdtempSync(join(tmpdir(), "torchvid-jobs-store-"));
after(() => rmSync(root, { recursive: true, force: true }));

function sidecar(jobId: string, seed: number): JobSidecar {
  return {
    jobId, queue: "q", kind: "generate", request: { prompt: "a cat", seed }, seed, model: "/m", device: "cpu", attempt: 1,
    worker: { host: "h", pid: 1 }, video: { file: `${jobId}.mp4`, numFrames: 2, width: 32, height: 32, fps: 8 },
    timings: { submittedAt: 1, startedAt: 2, generateMs: 3, encodeMs: 4 },
  };
}

describe("Redis URLs", () => {
  it("parses host, port, database, user, password and TLS", () => {
    assert.deepEqual(parseRedisUrl("redis://127.0.0.1:6380"), { host: "127.0.0.1", port: 6380 });
    assert.deepEqual(parseRedisUrl("redis://queue-host"), { host: "queue-host", port: 6379 });
    assert.deepEqual(parseRedisUrl("rediss://me:p%40ss@h:1/3"), { host: "h", port: 1, db: 3, username: "me", password: "p@ss", tls: {} });
    assert.deepEqual(parseRedisUrl("redis://:secret@[::1]:7000"), { host: "::1", port: 7000, password: "secret" });
  });
  it("refuses what is not a Redis URL, saying the expected form", () => {
    assert.throws(() => parseRedisUrl("127.0.0.1:6379"), /expected redis:\/\/host:port/);
    assert.throws(() => parseRedisUrl("http://h:6379"), /scheme http:/);
    assert.throws(() => parseRedisUrl("redis://h:6379/queue"), /must be a database number/);
  });
  it("never prints a password", () => {
    assert.equal(redactUrl("redis://me:hunter2@h:6379/0"), "redis://me:***@h:6379/0");
    assert.equal(redactUrl("redis://h:6379"), "redis://h:6379");
  });
});

describe("FileResultStore", () => {
  it("puts <id>.mp4 and <id>.json, moving the scratch file; a retry replaces, never adds", async () => {
    const dir = join(root, "out1");
    mkdirSync(dir);
    const store = new FileResultStore(dir);
    await store.check();
    const scratch = join(root, "scratch.mp4");
    writeFileSync(scratch, "first");
    const stored = await store.put("7", scratch, sidecar("7", 1));
    assert.deepEqual(stored, { jobId: "7", video: join(dir, "7.mp4"), sidecar: join(dir, "7.json") });
    assert.equal(existsSync(scratch), false, "the scratch file is consumed");
    writeFileSync(scratch, "second");
    await store.put("7", scratch, sidecar("7", 2));
    assert.deepEqual(readdirSync(dir).sort(), ["7.json", "7.mp4"]);
    assert.equal(readFileSync(join(dir, "7.mp4"), "utf8"), "second");
    assert.equal(JSON.parse(readFileSync(join(dir, "7.json"), "utf8")).seed, 2);
    assert.deepEqual(await store.get("7"), stored);
    assert.equal(await store.get("8"), undefined);
  });

  it("sweeps the temp files a killed worker left for the same job, and only those", async () => {
    const dir = join(root, "out2");
    mkdirSync(dir);
    const store = new FileResultStore(dir);
    const stale = [".5.mp4.4242.abcd1234.tmp", ".5.json.4242.abcd1234.tmp"];
    const others = [".50.mp4.4242.abcd1234.tmp", "5-notes.txt"];
    for (const name of [...stale, ...others]) writeFileSync(join(dir, name), "x");
    const scratch = join(root, "scratch5.mp4");
    writeFileSync(scratch, "video");
    await store.put("5", scratch, sidecar("5", 1));
    assert.deepEqual(readdirSync(dir).sort(), [...others, "5.json", "5.mp4"].sort());
  });

  it("leaves nothing when the video cannot be copied in", async () => {
    const dir = join(root, "out3");
    mkdirSync(dir);
    const store = new FileResultStore(dir);
    await assert.rejects(store.put("9", join(root, "missing.mp4"), sidecar("9", 1)), /Cannot write .*9\.mp4/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith(".tmp") || n.endsWith(".mp4")), [], "no partial video, no temp file");
  });

  it("says how to fix a missing output folder", async () => {
    await assert.rejects(new FileResultStore(join(root, "nope")).check(), /Output folder .*nope does not exist: create it \(mkdir -p/);
  });

  it("takes only job ids that are safe file names", () => {
    assert.equal(checkJobIdForFile("render-42_b"), "render-42_b");
    for (const bad of ["../x", "a/b", ".hidden", "a.b", "", "x".repeat(201)]) assert.throws(() => checkJobIdForFile(bad), /cannot be a file name/, bad);
  });
});

describe("torchvid jobs table", () => {
  it("shows counts, then one row per job with its progress, file or error", () => {
    const text = formatJobs(
      [
        { id: "3", kind: "generate", state: "active", prompt: "a   very\nlong prompt about a corgi running on the beach at sunset", attempts: 1, submittedAt: 0, progress: { phase: "steps", step: 4, numSteps: 25 } },
        { id: "2", kind: "upscale", state: "completed", prompt: "waves", attempts: 2, submittedAt: 0, video: "/v/2.mp4" },
        { id: "1", kind: "generate", state: "failed", prompt: "big", attempts: 3, submittedAt: 0, error: "CUDA out of memory" },
      ],
      { active: 1, waiting: 2, prioritized: 1, delayed: 0, completed: 1, failed: 1 },
    );
    assert.equal(
      text,
      [
        "active 1, waiting 3, retry-wait 0, done 1, failed 1",
        "",
        "ID  STATE        KIND      TRIES  PROMPT                                    VIDEO / ERROR",
        "3   active 4/25  generate  1      a very long prompt about a corgi runnin…",
        "2   done         upscale   2      waves                                     /v/2.mp4",
        "1   failed       generate  3      big                                       CUDA out of memory",
      ].join("\n"),
    );
  });
});
