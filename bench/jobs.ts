/**
 * Job-queue benchmark, on its own: `npx tsx bench/jobs.ts [--jobs 40] [--workers 1,2,4] [--json]`.
 * Starts a private redis-server (Debian's) on a random loopback port and real `torchvid worker`
 * processes on the tiny model (CPU), then measures
 *   - throughput: jobs per minute with 1, 2 and 4 workers (first submit to last result, worker
 *     start-up excluded: workers are ready before the first job is queued);
 *   - queue overhead per job, one job at a time on an idle worker:
 *       submit -> start    producer calls generate() until the worker's job function starts,
 *       end -> visible     the worker has the encoded video until the producer's finished()
 *                          resolves with the stored file (store rename + BullMQ completion + event).
 * Settings per job: 2 DDIM steps, 2 frames, 32x32, guidance 1 (no CFG): a toy job, so that the
 * queue's own cost shows.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VideoJobs } from "../lib/jobs/producer.ts";
import { startRedis } from "../tests/helpers/redis-server.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(repo, "bin", "torchvid.js");
const model = join(repo, "models", "tiny");
const JOB = { numInferenceSteps: 2, numFrames: 2, width: 32, height: 32, guidanceScale: 1 } as const;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
}

function startWorkerProcess(redisUrl: string, queue: string, out: string): Worker {
  const child = spawn(process.execPath, [bin, "worker", "--redis", redisUrl, "--queue", queue, "--out", out, "--model", model, "--device", "cpu", "--json"], {
    cwd: repo,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const ready = new Promise<void>((resolve, reject) => {
    let buffer = "";
    child.stdout!.on("data", (d) => {
      buffer += d;
      if (buffer.includes('"event":"ready"')) resolve();
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, ready, exited };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  if (!existsSync(join(model, "manifest.json"))) throw new Error("models/tiny missing: run `npm run setup`");
  const numJobs = Number(arg("jobs", "40"));
  const counts = arg("workers", "1,2,4").split(",").map(Number);
  const overheadJobs = Number(arg("overhead-jobs", "20"));
  const json = process.argv.includes("--json");
  const redis = await startRedis();
  const root = mkdtempSync(join(tmpdir(), "torchvid-bench-jobs-"));
  const load = loadavg().map((x) => x.toFixed(2)).join(" ");
  const rows: { workers: number; jobs: number; seconds: number; jobsPerMinute: number; medianJobS: number }[] = [];
  const overhead: { submitToStartMs: number[]; endToVisibleMs: number[] } = { submitToStartMs: [], endToVisibleMs: [] };
  try {
    for (const n of counts) {
      const queue = `bench-${n}`;
      const out = mkdtempSync(join(root, `out-${n}-`));
      const workers = Array.from({ length: n }, () => startWorkerProcess(redis.url, queue, out));
      await Promise.all(workers.map((w) => w.ready));
      const jobs = new VideoJobs({ connection: redis.url, queue });
      await jobs.ready();
      // One warm-up job per worker (first forward of a fresh process is slower), not timed.
      await Promise.all(await Promise.all(Array.from({ length: n }, (_, i) => jobs.generate({ prompt: `warm-up ${i}`, seed: i, ...JOB }))).then((js) => js.map((j) => j.finished())));
      const t0 = Date.now();
      const submitted = await Promise.all(Array.from({ length: numJobs }, (_, i) => jobs.generate({ prompt: `a corgi, take ${i}`, seed: 1000 + i, ...JOB })));
      const results = await Promise.all(submitted.map((j) => j.finished()));
      const seconds = (Date.now() - t0) / 1000;
      rows.push({ workers: n, jobs: numJobs, seconds, jobsPerMinute: (numJobs * 60) / seconds, medianJobS: median(results.map((r) => (r.timings.storedAt - r.timings.startedAt) / 1000)) });

      if (n === 1) {
        // Queue overhead: one job at a time, so no job waits behind another.
        for (let i = 0; i < overheadJobs; i++) {
          const before = Date.now();
          const job = await jobs.generate({ prompt: `overhead ${i}`, seed: i, ...JOB });
          const r = await job.finished();
          const seen = Date.now();
          overhead.submitToStartMs.push(r.timings.startedAt - before);
          overhead.endToVisibleMs.push(seen - (r.timings.startedAt + r.timings.generateMs + r.timings.encodeMs));
          if (!existsSync(r.video)) throw new Error(`${r.video} not there when finished() resolved`);
        }
      }
      for (const w of workers) w.child.kill("SIGTERM");
      await Promise.all(workers.map((w) => w.exited));
      await jobs.close();
    }
  } finally {
    await redis.dispose();
    rmSync(root, { recursive: true, force: true });
  }

  const meta = { date: new Date().toISOString(), node: process.version, cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`, loadavgAtStart: load, job: JOB };
  const summary = {
    submitToStartMs: { median: median(overhead.submitToStartMs), p90: percentile(overhead.submitToStartMs, 90) },
    endToVisibleMs: { median: median(overhead.endToVisibleMs), p90: percentile(overhead.endToVisibleMs, 90) },
  };
  if (json) {
    process.stdout.write(`${JSON.stringify({ meta, throughput: rows, overhead: { ...summary, raw: overhead } }, null, 2)}\n`);
    return;
  }
  const lines = [
    `torchvid job queue, ${meta.date}, ${meta.cpus}, Node ${meta.node}, load average at start ${load}`,
    `job: tiny model, ${JOB.numInferenceSteps} steps, ${JOB.numFrames} frames ${JOB.width}x${JOB.height}, no CFG, CPU`,
    "",
    "| CPU workers | jobs | wall, s | jobs per minute | median job on its worker, s |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.workers} | ${r.jobs} | ${r.seconds.toFixed(1)} | ${r.jobsPerMinute.toFixed(1)} | ${r.medianJobS.toFixed(2)} |`),
    "",
    `| queue overhead per job (1 idle worker, ${overheadJobs} jobs) | median, ms | p90, ms |`,
    "|---|---|---|",
    `| submit -> start | ${summary.submitToStartMs.median} | ${summary.submitToStartMs.p90} |`,
    `| end -> result visible | ${summary.endToVisibleMs.median} | ${summary.endToVisibleMs.p90} |`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  const save = arg("save", "");
  if (save) writeFileSync(save, `${lines.join("\n")}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
