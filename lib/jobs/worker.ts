/**
 * startWorker: one BullMQ Worker per device process. It loads the model once, then runs jobs one
 * after another (concurrency 1: a device runs one generation at a time). What BullMQ already does
 * is left to BullMQ: lock renewal, the stalled-job check that hands a dead worker's job to a live
 * one (and fails it after `maxStalledCount` stalls: a job that kills every worker it visits does
 * not loop forever), retries with backoff, reconnecting after Redis comes back.
 *
 * Failures: out of memory (and other runtime errors) are thrown as they are, so BullMQ retries
 * them up to the job's attempts; a job that can never work (bad input the submit-time check could
 * not see, another model) fails at once through UnrecoverableError.
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnrecoverableError, WaitingError, Worker, type Job } from "bullmq";
import { ModelFormatError, TextToVideoSDPipeline, TorchvidError, emptyCache, type DType, type Device, type VideoDiffusionPipeline } from "../index.ts";
import { checkRedisReachable, resolveConnection, withQuickReconnect, type RedisConnectionInput } from "./connection.ts";
import { FileResultStore } from "./file-store.ts";
import type { ResultStore } from "./result-store.ts";
import { JobRefusedError, runJob } from "./run-job.ts";
import { DEFAULT_QUEUE, type VideoJobData, type VideoJobKind, type VideoJobProgress, type VideoJobResult } from "./types.ts";

export interface StartWorkerOptions {
  /** A Redis URL (`redis://host:6379`) or BullMQ connection options. */
  connection: RedisConnectionInput;
  /** Queue name, the producers' one. Defaults to "torchvid". */
  queue?: string;
  /** The model folder to load (once), or a pipeline already loaded. */
  model: string | VideoDiffusionPipeline;
  /** "cpu", "cuda" or "cuda:N". Defaults to the library's choice. */
  device?: Device;
  dtype?: DType;
  /** Folder for `<job id>.mp4` + `<job id>.json` (a shared mount with several machines). Defaults to the current folder. */
  out?: string;
  /** Another result store instead of `out` (an S3-compatible one, say). */
  store?: ResultStore;
  /** On close(), how long the running job may take to finish before it is stopped and handed back to the queue. Defaults to 60000 ms. */
  gracePeriodMs?: number;
  /** A job's lock lasts this long without renewal; a worker that died loses its job after it. Defaults to BullMQ's 30000 ms. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (whose worker died). Defaults to BullMQ's 30000 ms. */
  stalledIntervalMs?: number;
  /** Stalls after which a job fails instead of being handed on (a job that kills its workers). Defaults to BullMQ's 1. */
  maxStalledCount?: number;
}

/** What a running worker reports (the CLI prints these). */
export interface WorkerEvents {
  ready: [{ queue: string; model: string; device: string; out: string }];
  start: [{ jobId: string; kind: VideoJobKind; attempt: number; prompt: string }];
  progress: [{ jobId: string; progress: VideoJobProgress }];
  done: [{ jobId: string; result: VideoJobResult }];
  failed: [{ jobId: string; error: Error; willRetry: boolean }];
  /** The job was stopped at shutdown and put back in the queue for another worker. */
  handedBack: [{ jobId: string }];
  /** Connection trouble and other problems that do not stop the worker. */
  warning: [{ message: string }];
  closed: [];
}

export class VideoWorker extends EventEmitter<WorkerEvents> {
  readonly queue: string;
  readonly pipeline: VideoDiffusionPipeline;
  readonly store: ResultStore;
  readonly bull: Worker<VideoJobData, VideoJobResult, VideoJobKind>;
  readonly #grace: number;
  readonly #scratchDir: string;
  #current?: { job: Job<VideoJobData, VideoJobResult, VideoJobKind>; controller: AbortController; handBack: boolean };
  #closing?: Promise<void>;
  #expire?: () => void;
  #lastWarning = "";

  /** @internal use startWorker() */
  constructor(args: { queue: string; pipeline: VideoDiffusionPipeline; store: ResultStore; connection: ReturnType<typeof resolveConnection>["options"]; options: StartWorkerOptions }) {
    super();
    this.queue = args.queue;
    this.pipeline = args.pipeline;
    this.store = args.store;
    this.#grace = args.options.gracePeriodMs ?? 60_000;
    this.#scratchDir = mkdtempSync(join(tmpdir(), `torchvid-worker-${process.pid}-`));
    const o = args.options;
    this.bull = new Worker<VideoJobData, VideoJobResult, VideoJobKind>(this.queue, (job, token) => this.#process(job, token), {
      connection: args.connection,
      concurrency: 1,
      autorun: false,
      ...(o.lockDurationMs !== undefined ? { lockDuration: o.lockDurationMs } : {}),
      ...(o.stalledIntervalMs !== undefined ? { stalledInterval: o.stalledIntervalMs } : {}),
      ...(o.maxStalledCount !== undefined ? { maxStalledCount: o.maxStalledCount } : {}),
    });
    // Without a listener an 'error' event (Redis gone for a moment) would crash the process.
    this.bull.on("error", (err) => this.#warn(`queue: ${err.message}`));
    this.bull.on("failed", (job, error) => {
      if (!job) return;
      const attempts = job.opts.attempts ?? 1;
      const willRetry = !(error instanceof UnrecoverableError) && job.attemptsMade < attempts && error.name !== "UnrecoverableError";
      this.emit("failed", { jobId: job.id!, error, willRetry });
    });
  }

  /** The id of the job running now, if any. */
  get currentJobId(): string | undefined {
    return this.#current?.job.id;
  }

  /**
   * Stops taking jobs. The running one gets `gracePeriodMs` to finish; after that it is aborted
   * (between denoising steps) and put back in the queue, where another worker starts it again.
   * Resolves once the worker is disconnected.
   */
  close(options: { gracePeriodMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const grace = options.gracePeriodMs ?? this.#grace;
      const closed = this.bull.close();
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<"expired">((r) => {
        this.#expire = () => r("expired");
        timer = setTimeout(this.#expire, grace);
      });
      if ((await Promise.race([closed.then(() => "closed" as const), expired])) === "expired" && this.#current) {
        this.#current.handBack = true;
        this.#current.controller.abort(new TorchvidError("ERR_TORCHVID_ABORTED", `worker shutting down: job handed back after the ${grace} ms grace period`));
      }
      clearTimeout(timer);
      await closed;
      rmSync(this.#scratchDir, { recursive: true, force: true });
      this.emit("closed");
    })();
    return this.#closing;
  }

  /** Ends the grace period now: the running job is stopped and handed back (a second Ctrl-C). */
  handBackNow(): Promise<void> {
    if (!this.#closing) return this.close({ gracePeriodMs: 0 });
    this.#expire?.();
    return this.#closing;
  }

  /** @internal */
  run(): void {
    this.bull.run().catch((err: Error) => this.#warn(`worker stopped: ${err.message}`));
  }

  async #process(job: Job<VideoJobData, VideoJobResult, VideoJobKind>, token?: string): Promise<VideoJobResult> {
    const controller = new AbortController();
    const current = { job, controller, handBack: false };
    this.#current = current;
    const attempt = job.attemptsStarted || job.attemptsMade + 1;
    this.emit("start", { jobId: job.id!, kind: job.name, attempt, prompt: job.data.request.prompt ?? "" });
    try {
      const result = await runJob({
        jobId: job.id!,
        queue: this.queue,
        data: job.data,
        attempt,
        submittedAt: job.timestamp,
        base: this.pipeline,
        store: this.store,
        scratchDir: this.#scratchDir,
        signal: controller.signal,
        onProgress: (progress) => {
          this.emit("progress", { jobId: job.id!, progress });
          // Not awaited: a step must not wait for Redis (ioredis queues it while reconnecting).
          job.updateProgress(progress as unknown as object).catch(() => {});
        },
      });
      this.emit("done", { jobId: job.id!, result });
      return result;
    } catch (err) {
      if (current.handBack && token) {
        // BullMQ's documented way to return an active job to the queue: move it, then throw WaitingError.
        await job.moveToWait(token);
        this.emit("handedBack", { jobId: job.id! });
        throw new WaitingError();
      }
      if (isOutOfMemory(err)) {
        // Free the cached blocks the failed run left, so the retry (here or elsewhere) has room.
        try {
          emptyCache();
        } catch {}
        throw err;
      }
      if (isHopeless(err)) throw new UnrecoverableError((err as Error).message);
      throw err;
    } finally {
      this.#current = undefined;
    }
  }

  #warn(message: string): void {
    // A Redis outage repeats the same error every retry: report it once until it changes.
    if (message === this.#lastWarning) return;
    this.#lastWarning = message;
    this.emit("warning", { message });
  }
}

function isOutOfMemory(err: unknown): boolean {
  return (err as { code?: unknown })?.code === "ERR_TORCHVID_OOM";
}

/** Errors no retry can fix: wrong input (caught only with the model loaded), another model, a bad model folder. */
function isHopeless(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof JobRefusedError || err instanceof ModelFormatError;
}

/** Removes scratch folders of workers on this machine that were killed (SIGKILL runs no cleanup). */
function sweepDeadScratch(): void {
  for (const name of safeReaddir(tmpdir())) {
    const m = /^torchvid-worker-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Connects to Redis (a clear error naming the URL when it cannot), checks the output folder,
 * loads the model once and starts taking jobs. Call `close()` on SIGTERM.
 */
export async function startWorker(options: StartWorkerOptions): Promise<VideoWorker> {
  const { options: resolved, label } = resolveConnection(options.connection);
  const connection = withQuickReconnect(resolved);
  const queue = options.queue ?? DEFAULT_QUEUE;
  const store = options.store ?? new FileResultStore(options.out ?? ".");
  // Cheap checks first: nothing is loaded when Redis or the output folder is wrong.
  await checkRedisReachable(connection, label);
  await store.check();
  sweepDeadScratch();
  const pipeline =
    typeof options.model === "string"
      ? await TextToVideoSDPipeline.fromPretrained(options.model, { ...(options.device !== undefined ? { device: options.device } : {}), ...(options.dtype !== undefined ? { dtype: options.dtype } : {}) })
      : options.model;
  const worker = new VideoWorker({ queue, pipeline, store, connection, options });
  await worker.bull.waitUntilReady();
  worker.run();
  worker.emit("ready", { queue, model: pipeline.modelDir, device: String(pipeline.device), out: store.location });
  return worker;
}
