/**
 * `torchvid worker --redis URL`: takes generation jobs from a BullMQ queue on Redis and runs them
 * on one device until SIGTERM or SIGINT. On the first signal it stops taking jobs and lets the
 * running one finish within --grace seconds, else hands it back to the queue; then exits 0.
 * A second signal hands the running job back at once.
 */
import type { Argv, CommandModule } from "yargs";
import { checkInt, checkNumber, defaultModelDir, EXIT_OK, UsageError, type GlobalArgs } from "./common.ts";
import { checkModel, DTYPES } from "./options.ts";

interface WorkerArgs extends GlobalArgs {
  redis: string;
  queue: string;
  out: string;
  model?: string;
  device?: string;
  dtype?: string;
  grace: number;
  lockDuration?: number;
  stalledInterval?: number;
  maxStalled?: number;
  json: boolean;
}

export async function worker(argv: WorkerArgs): Promise<number> {
  if (argv.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(argv.device)) {
    throw new UsageError(`--device must be cpu, cuda or cuda:N, got ${JSON.stringify(argv.device)}`);
  }
  const grace = checkNumber(argv.grace, "grace", 0);
  const lockDuration = argv.lockDuration === undefined ? undefined : checkInt(argv.lockDuration, "lock-duration", 100);
  const stalledInterval = argv.stalledInterval === undefined ? undefined : checkInt(argv.stalledInterval, "stalled-interval", 100);
  const maxStalled = argv.maxStalled === undefined ? undefined : checkInt(argv.maxStalled, "max-stalled", 0);
  const model = argv.model ?? defaultModelDir();
  checkModel(model);
  const { parseRedisUrl } = await import("../jobs/connection.ts");
  try {
    parseRedisUrl(argv.redis);
  } catch (err) {
    throw new UsageError(`--redis: ${(err as Error).message}`);
  }

  const say = (event: string, fields: Record<string, unknown>, line: string) => {
    if (argv.json) process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
    else process.stderr.write(`torchvid worker: ${line}\n`);
  };
  // Signals that arrive while the model loads: stop right after start-up.
  let stopRequested = 0;
  let onSignal = (_sig: NodeJS.Signals) => {
    stopRequested++;
  };
  const handler = (sig: NodeJS.Signals) => onSignal(sig);
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  try {
    const { startWorker } = await import("../jobs/worker.ts");
    const w = await startWorker({
      connection: argv.redis,
      queue: argv.queue,
      model,
      out: argv.out,
      ...(argv.device !== undefined ? { device: argv.device as `cuda:${number}` } : {}),
      ...(argv.dtype !== undefined ? { dtype: argv.dtype as (typeof DTYPES)[number] } : {}),
      gracePeriodMs: grace * 1000,
      ...(lockDuration !== undefined ? { lockDurationMs: lockDuration } : {}),
      ...(stalledInterval !== undefined ? { stalledIntervalMs: stalledInterval } : {}),
      ...(maxStalled !== undefined ? { maxStalledCount: maxStalled } : {}),
    });
    say("ready", { pid: process.pid, queue: w.queue, model: w.pipeline.modelDir, device: String(w.pipeline.device), out: w.store.location },
      `ready (pid ${process.pid}): queue ${w.queue}, model ${w.pipeline.modelDir} on ${w.pipeline.device}, results in ${w.store.location}`);
    w.on("start", (e) => say("start", e, `job ${e.jobId} started (attempt ${e.attempt}): ${JSON.stringify(e.prompt)}`));
    w.on("done", (e) => say("done", { jobId: e.jobId, video: e.result.video, timings: e.result.timings }, `job ${e.jobId} done in ${((e.result.timings.storedAt - e.result.timings.startedAt) / 1000).toFixed(1)} s: ${e.result.video}`));
    w.on("failed", (e) => say("failed", { jobId: e.jobId, message: e.error.message, willRetry: e.willRetry }, `job ${e.jobId} failed${e.willRetry ? " (will be retried)" : ""}: ${e.error.message}`));
    w.on("handedBack", (e) => say("handedBack", e, `job ${e.jobId} stopped and handed back to the queue`));
    w.on("warning", (e) => say("warning", e, `warning: ${e.message}`));

    const stopped = new Promise<void>((resolveStopped) => {
      onSignal = (sig) => {
        stopRequested++;
        if (stopRequested === 1) {
          const running = w.currentJobId;
          say("stopping", { signal: sig, jobId: running ?? null, graceS: grace },
            running ? `${sig}: not taking new jobs; job ${running} has ${grace} s to finish, else it goes back to the queue (${sig} again: at once)` : `${sig}: stopping`);
          w.close().then(resolveStopped, resolveStopped);
        } else {
          say("stopping", { signal: sig, now: true }, `${sig} again: handing the running job back now`);
          void w.handBackNow();
        }
      };
    });
    if (stopRequested > 0) onSignal("SIGTERM");
    await stopped;
    say("stopped", {}, "stopped");
    return EXIT_OK;
  } finally {
    process.off("SIGTERM", handler);
    process.off("SIGINT", handler);
  }
}

export const workerCommand: CommandModule<GlobalArgs, WorkerArgs> = {
  command: "worker",
  describe: "Run queued generation jobs (BullMQ on Redis) on one device until SIGTERM",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("redis", { type: "string", demandOption: true, describe: "Redis URL, e.g. redis://127.0.0.1:6379" })
      .option("queue", { type: "string", default: "torchvid", describe: "Queue name (one queue per model)" })
      .option("out", { type: "string", default: ".", describe: "Folder for <job id>.mp4 and <job id>.json (a shared mount across machines)" })
      .option("model", { type: "string", describe: "Model folder, loaded once (default: the package's models/tiny)" })
      .option("device", { type: "string", describe: "cpu, cuda or cuda:N: one worker per GPU" })
      .option("dtype", { type: "string", choices: DTYPES, describe: "Weights and activations type (float16 needs CUDA)" })
      .option("grace", { type: "number", default: 60, describe: "Seconds the running job gets to finish on SIGTERM before it is handed back to the queue" })
      .option("lock-duration", { type: "number", describe: "Job lock in ms: a dead worker's job is handed on after this (BullMQ default 30000)" })
      .option("stalled-interval", { type: "number", describe: "How often to look for stalled jobs, in ms (BullMQ default 30000)" })
      .option("max-stalled", { type: "number", describe: "Stalls (worker deaths) after which a job fails instead of being handed on (default 1)" })
      .option("json", { type: "boolean", default: false, describe: "Print events as JSON lines on stdout" })
      .example("$0 worker --redis redis://queue-host:6379 --device cuda:0 --out /mnt/shared/videos", "One worker on GPU 0")
      .example("for i in 0 1 2 3; do $0 worker --redis redis://queue-host:6379 --device cuda:$i --out /mnt/shared/videos & done", "One worker per GPU") as unknown as Argv<WorkerArgs>,
  handler: () => {},
};
