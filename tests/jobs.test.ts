// The job queue end to end: a real redis-server, real `torchvid worker` processes on the tiny
// model, faults injected by a test-only preload (tests/helpers/jobs-faults.ts). Checks what the
// issue promises: a SIGKILLed worker's job is finished once by another, a Redis restart loses
// nothing, SIGTERM finishes the running job (or hands it back after the grace period) and exits 0,
// a bad job is refused at submit, out-of-memory is retried a bounded number of times, a poison job
// ends failed, and every good job leaves exactly one playable video and its sidecar.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { VideoJobs } from "../lib/jobs/producer.ts";
import type { JobSidecar } from "../lib/jobs/result-store.ts";
import { readVideo } from "../lib/video/read.ts";
import { redisMissing, startRedis, type RedisServer } from "./helpers/redis-server.ts";
import { runNode } from "./helpers/run-node.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(repo, "bin", "torchvid.js");
const preload = join(repo, "tests", "helpers", "jobs-faults.ts");
// Workers run the CLI from lib/, so the fault preload (which patches lib/) applies even when dist/ is built.
const workerCli = join(repo, "tests", "helpers", "cli-from-source.ts");
const model = join(repo, "models", "tiny");
const skip = redisMissing ?? (existsSync(join(model, "manifest.json")) ? false : "models/tiny missing: run `npm run setup`");

/** Tiny settings: a job takes about a second on a CPU. */
const TINY = { numInferenceSteps: 2, numFrames: 2, width: 32, height: 32 } as const;
/** Short BullMQ timings so a dead worker's job is handed on within seconds, not minutes. */
const FAST_STALL = ["--lock-duration", "4000", "--stalled-interval", "1000"];

let redis: RedisServer;
let root: string;
const children = new Set<ChildProcess>();

interface Event {
  event: string;
  jobId?: string;
  pid?: number;
  [key: string]: unknown;
}

interface WorkerProc {
  child: ChildProcess;
  pid: number;
  events: Event[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWorker(queue: string, out: string, journal: string, extra: string[] = []): WorkerProc {
  const child = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), "--import", preload, workerCli, "worker", "--redis", redis.url, "--queue", queue, "--out", out, "--model", model, "--json", ...extra],
    { cwd: repo, env: { ...process.env, TORCHVID_FAULTS_JOURNAL: journal }, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.add(child);
  const events: Event[] = [];
  let buffer = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith("{")) events.push(JSON.parse(line) as Event);
    }
  });
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, pid: child.pid!, events, stderr: () => err, exited };
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode([bin, ...args], { cwd: repo });
}

async function until<T>(what: string, timeoutMs: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readJournal(file: string): { event: string; prompt: string; pid: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

function count(journal: ReturnType<typeof readJournal>, event: string, prompt: string): number {
  return journal.filter((j) => j.event === event && j.prompt === prompt).length;
}

describe("job queue: BullMQ on a real redis-server, torchvid workers on the tiny model", { skip, timeout: 170_000 }, () => {
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "torchvid-jobs-"));
    // appendonly + fsync always: the restart in the middle of the run must not lose a job.
    redis = await startRedis({ appendOnly: true });
  });
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await redis?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it("refuses a bad job at submit time, before anything is queued (library and CLI)", async () => {
    const jobs = new VideoJobs({ connection: redis.url, queue: "refuse" });
    try {
      await assert.rejects(jobs.generate({ prompt: "a cat", width: 33 }), /width must be a multiple of 8 but received 33: try 32 or 40/);
      await assert.rejects(jobs.generate({ prompt: "  " }), /prompt is empty/);
      await assert.rejects(jobs.generate({ prompt: "a cat", steps: 4 } as never), /Unknown field "steps"/);
      await assert.rejects(jobs.generate({ prompt: "a cat", numVideosPerPrompt: 2 }), /submit 2 jobs instead/);
      await assert.rejects(jobs.upscale({ video: "in.mp4", strength: 0 }), /strength in \(0, 1\]/);
      await assert.rejects(jobs.generate({ prompt: "a cat" }, { jobId: "../x" }), /cannot be a file name/);
      const r = await runCli(["submit", "--redis", redis.url, "--queue", "refuse", "a cat", "--steps", "0"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^torchvid: Expected an integer between 1 and 1000 for --steps but received 0$/m);
      assert.equal(r.stdout, "", "no job id printed");
      await jobs.ready();
      const counts = await jobs.queue.getJobCounts();
      assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0, `nothing queued: ${JSON.stringify(counts)}`);
    } finally {
      await jobs.close();
    }
  });

  it("names the Redis URL it cannot reach, within seconds (worker, submit and the library)", async () => {
    const dead = "redis://127.0.0.1:1";
    const started = Date.now();
    const r = await runCli(["worker", "--redis", dead, "--out", root]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\b.*ECONNREFUSED/);
    const s = await runCli(["submit", "--redis", "redis://:secret@127.0.0.1:1", "a cat"]);
    assert.equal(s.code, 1, s.stderr);
    assert.match(s.stderr, /Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/, "the password is not printed");
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    const jobs = new VideoJobs({ connection: dead });
    await assert.rejects(jobs.generate({ prompt: "a cat" }), (err: Error & { code?: string }) => err.code === "ERR_TORCHVID_QUEUE" && err.message.includes(dead));
    await jobs.close();
  });

  it("2 workers, 8 jobs: a worker SIGKILLed mid-job, Redis restarted, SIGTERM during a job, a poison job, an out-of-memory job", async () => {
    const queue = "main";
    const out = mkdtempSync(join(root, "out-"));
    const journal = join(root, "main-journal.jsonl");
    const jobs = new VideoJobs({ connection: redis.url, queue, attempts: 2, backoffMs: 100 });
    const workers: WorkerProc[] = [];
    // A supervisor (systemd, Kubernetes) restarts workers that die or stop: so does the test.
    let supervising = true;
    const launch = () => {
      const w = spawnWorker(queue, out, journal, FAST_STALL);
      workers.push(w);
      void w.exited.then(() => supervising && launch());
      return w;
    };
    const ready = (w: WorkerProc) => until(`worker ${w.pid} ready (${w.stderr()})`, 60_000, () => w.events.some((e) => e.event === "ready"));
    // A worker reports "start" a moment before its generate() runs: wait for the journal's entry
    // too, so a signal sent next lands inside the job (a SIGKILL in between once left job 0 with
    // one journaled start instead of two).
    const startedOn = async (jobId: string, prompt: string) => {
      const w = await until(`job ${jobId} to start`, 60_000, () => workers.find((w) => w.events.some((e) => e.event === "start" && e.jobId === jobId)));
      await until(`job ${jobId} inside generate() on ${w.pid}`, 60_000, () => readJournal(journal).some((j) => j.event === "start" && j.prompt === prompt && j.pid === w.pid));
      return w;
    };
    try {
      const [a, b] = [launch(), launch()];
      await Promise.all([ready(a), ready(b)]);

      const prompts = ["[slow] job 0", "[slow] job 1", ...Array.from({ length: 6 }, (_, i) => `job ${i + 2}`)];
      const good = [];
      for (const [i, prompt] of prompts.entries()) good.push(await jobs.generate({ prompt, seed: 100 + i, ...TINY }));

      // SIGKILL the worker running job 0 mid-job: the stalled check hands it to another worker.
      const killed = await startedOn(good[0]!.id, prompts[0]!);
      killed.child.kill("SIGKILL");
      // SIGTERM the worker running job 1: it finishes that job within the grace period and exits 0.
      const termed = await startedOn(good[1]!.id, prompts[1]!);
      termed.child.kill("SIGTERM");

      // Take Redis away for a second, while a job runs and others wait, then restart it.
      await until("2 jobs done and one running", 60_000, async () => {
        const c = await jobs.queue.getJobCounts("completed", "active");
        return c.completed >= 2 && c.active >= 1;
      });
      const remaining = 8 - (await jobs.queue.getJobCounts("completed")).completed;
      await redis.stop();
      await new Promise((r) => setTimeout(r, 1000));
      await redis.start();
      assert.ok(remaining > 0, "the restart happened mid-run");

      const poison = await jobs.generate({ prompt: "[poison] kills its worker", seed: 1, ...TINY });
      const oom = await jobs.generate({ prompt: "[oom] too big", seed: 2, ...TINY });
      // One more through the CLI, waiting for it: exit 0 once its video is written.
      const cli = await runCli(["submit", "--redis", redis.url, "--queue", queue, "job 8 via cli", "--steps", "2", "--frames", "2", "--width", "32", "--height", "32", "--seed", "7", "--wait", "--json"]);
      assert.equal(cli.code, 0, cli.stderr);
      const cliEvents = cli.stdout.trim().split("\n").map((l) => JSON.parse(l) as Event);
      const cliId = cliEvents[0]!.jobId!;
      assert.equal(cliEvents[0]!.event, "submitted");
      assert.ok(cliEvents.some((e) => e.event === "step"), "progress shown while waiting");
      assert.deepEqual(cliEvents.at(-1), { event: "result", jobId: cliId, video: join(out, `${cliId}.mp4`), sidecar: join(out, `${cliId}.json`), seed: 7, attempt: 1 });

      const all = [...good.map((j) => j.id), cliId, poison.id, oom.id];
      await until("every job to finish or fail", 100_000, async () => {
        const states = await Promise.all(all.map((id) => jobs.state(id)));
        return states.every((s) => s === "completed" || s === "failed") && states;
      });
      supervising = false;

      // The SIGTERMed worker finished its job itself and exited 0; the SIGKILLed one died.
      assert.deepEqual(await termed.exited, { code: 0, signal: null }, termed.stderr());
      assert.equal((await killed.exited).signal, "SIGKILL");
      const runs = readJournal(journal);

      // Every good job: completed, one video that decodes to 2 frames of 32x32, one sidecar.
      for (const [i, id] of [...good.map((j) => j.id), cliId].entries()) {
        assert.equal(await jobs.state(id), "completed", `job ${id}`);
        const video = await readVideo(join(out, `${id}.mp4`));
        assert.deepEqual([video.numFrames, video.width, video.height], [2, 32, 32], `video of job ${id}`);
        const sidecar = JSON.parse(readFileSync(join(out, `${id}.json`), "utf8")) as JobSidecar;
        assert.equal(sidecar.jobId, id);
        assert.equal(sidecar.seed, i < 8 ? 100 + i : 7);
        assert.equal(sidecar.model, model);
        assert.equal(count(runs, "end", sidecar.request.prompt as string), 1, `job ${id} finished exactly once`);
      }
      const files = readdirSync(out).sort();
      const expected = [...good.map((j) => j.id), cliId].flatMap((id) => [`${id}.json`, `${id}.mp4`]).sort();
      assert.deepEqual(files, expected, "exactly one video + sidecar per good job, no temp or partial files");

      // Job 0: started on the killed worker, then once more elsewhere; finished once, as attempt 2.
      const job0 = JSON.parse(readFileSync(join(out, `${good[0]!.id}.json`), "utf8")) as JobSidecar;
      assert.equal(count(runs, "start", prompts[0]!), 2);
      assert.ok(runs.some((r) => r.event === "start" && r.prompt === prompts[0] && r.pid === killed.pid));
      assert.notEqual(job0.worker.pid, killed.pid);
      // Job 1: finished by the worker that got SIGTERM, during its grace period.
      const job1 = JSON.parse(readFileSync(join(out, `${good[1]!.id}.json`), "utf8")) as JobSidecar;
      assert.equal(job1.worker.pid, termed.pid);
      assert.equal(count(runs, "start", prompts[1]!), 1);

      // The poison job killed a worker at each of its 2 runs (maxStalledCount 1), then failed for good.
      const poisonJob = await jobs.queue.getJob(poison.id);
      assert.equal(await jobs.state(poison.id), "failed");
      assert.match(poisonJob!.failedReason, /stalled more than allowable limit/);
      assert.equal(count(runs, "start", "[poison] kills its worker"), 2);
      // Out of memory: retried up to its 2 attempts, then failed with the message.
      const oomJob = await jobs.queue.getJob(oom.id);
      assert.equal(await jobs.state(oom.id), "failed");
      assert.match(oomJob!.failedReason, /out of memory/);
      assert.equal(oomJob!.attemptsMade, 2);
      assert.equal(count(runs, "oom", "[oom] too big"), 2);

      // `torchvid jobs` sees the same.
      const listed = await runCli(["jobs", "--redis", redis.url, "--queue", queue, "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      const summary = JSON.parse(listed.stdout) as { counts: Record<string, number>; jobs: { id: string; state: string; error?: string }[] };
      assert.equal(summary.counts.completed, 9);
      assert.equal(summary.counts.failed, 2);
      assert.match(summary.jobs.find((j) => j.id === oom.id)!.error!, /out of memory/);
      const table = await runCli(["jobs", "--redis", redis.url, "--queue", queue]);
      assert.match(table.stdout, /^active 0, waiting 0, retry-wait 0, done 9, failed 2$/m);
    } finally {
      supervising = false;
      for (const w of workers) w.child.kill("SIGTERM");
      await Promise.all(workers.map((w) => w.exited));
      await jobs.close();
    }
  });

  it("SIGTERM past the grace period hands the running job back; another worker finishes it once", async () => {
    const queue = "handback";
    const out = mkdtempSync(join(root, "out-"));
    const journal = join(root, "handback-journal.jsonl");
    const jobs = new VideoJobs({ connection: redis.url, queue });
    try {
      const first = spawnWorker(queue, out, journal, ["--grace", "0.3", ...FAST_STALL]);
      const job = await jobs.generate({ prompt: "[slow] handed back", seed: 3, ...TINY });
      await until("the job to start", 60_000, () => first.events.some((e) => e.event === "start"));
      first.child.kill("SIGTERM");
      assert.deepEqual(await first.exited, { code: 0, signal: null }, first.stderr());
      assert.ok(first.events.some((e) => e.event === "handedBack" && e.jobId === job.id));
      assert.equal(await jobs.state(job.id), "waiting", "back in the queue, not failed");
      assert.deepEqual(readdirSync(out), []);

      const second = spawnWorker(queue, out, journal, FAST_STALL);
      const result = await job.finished();
      assert.equal(result.video, join(out, `${job.id}.mp4`));
      assert.equal(result.attempt, 2);
      // A video-to-video job on the same worker (its pipeline shares the loaded model).
      const upscale = await jobs.upscale({ video: result.video, prompt: "the same, re-rendered", strength: 0.5, numInferenceSteps: 2, width: 48, height: 48, seed: 4 });
      const upscaled = await upscale.finished();
      const video = await readVideo(upscaled.video);
      assert.deepEqual([video.numFrames, video.width, video.height], [2, 48, 48]);
      const upscaleSidecar = JSON.parse(readFileSync(upscaled.sidecar, "utf8")) as JobSidecar;
      assert.equal(upscaleSidecar.kind, "upscale");
      assert.equal(upscaleSidecar.request.video, result.video);
      // A job for another model fails at once (no retry can help) and says where it belongs.
      const elsewhere = await jobs.generate({ prompt: "another model", model: "/srv/models/zeroscope", ...TINY });
      await assert.rejects(elsewhere.finished(), /asks for model \/srv\/models\/zeroscope but this worker serves .*models\/tiny: run workers for that model on a queue of their own/);
      assert.equal((await jobs.queue.getJob(elsewhere.id))!.attemptsMade, 1, "not retried");
      // The same through `submit --wait`: exit 1 with the job's error.
      const cli = await runCli(["submit", "--redis", redis.url, "--queue", queue, "another model", "--model", "/srv/models/zeroscope", "--steps", "2", "--frames", "2", "--width", "32", "--height", "32", "--wait"]);
      assert.equal(cli.code, 1, cli.stderr);
      assert.match(cli.stdout, /^\d+\n$/, "the job id, then nothing");
      assert.match(cli.stderr.trim().split("\n").at(-1)!, /^torchvid: Job \d+ failed: Job \d+ asks for model \/srv\/models\/zeroscope/);
      second.child.kill("SIGTERM");
      assert.equal((await second.exited).code, 0);
      const runs = readJournal(journal);
      assert.equal(count(runs, "start", "[slow] handed back"), 2);
      assert.equal(count(runs, "end", "[slow] handed back"), 1);
      assert.deepEqual(readdirSync(out).sort(), [`${job.id}.json`, `${job.id}.mp4`, `${upscale.id}.json`, `${upscale.id}.mp4`].sort());
      assert.equal(count(runs, "start", "another model"), 0, "refused before generating");
    } finally {
      await jobs.close();
    }
  });
});
