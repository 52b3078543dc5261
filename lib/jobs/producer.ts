/**
 * VideoJobs: the producer side. Checks each request with the same checker as the studio and the
 * CLI (lib/requests.ts) and only then queues it on BullMQ, so a bad job is refused here, with the
 * checker's message, and never reaches a worker. Retries (bounded, with backoff) and the handling
 * of stalled jobs are BullMQ's own.
 */
import { EventEmitter } from "node:events";
import { resolve } from "node:path";
import { Job, Queue, QueueEvents, type JobsOptions } from "bullmq";
import { checkGenerateRequest, checkUpscaleRequest, type GenerateRequest, type RequestLimits, type UpscaleRequest } from "../requests.ts";
import { checkRedisReachable, resolveConnection, withQuickReconnect, type RedisConnectionInput } from "./connection.ts";
import { checkJobIdForFile } from "./file-store.ts";
import { DEFAULT_QUEUE, type VideoJobData, type VideoJobKind, type VideoJobProgress, type VideoJobResult, type VideoJobState } from "./types.ts";

export interface VideoJobsOptions {
  /** A Redis URL (`redis://host:6379`) or BullMQ connection options. */
  connection: RedisConnectionInput;
  /** Queue name; workers must use the same. Defaults to "torchvid". */
  queue?: string;
  /** Tries per job for failures worth retrying (out of memory, a lost device). Defaults to 3. */
  attempts?: number;
  /** First retry delay in ms, doubled at each retry. Defaults to 2000. */
  backoffMs?: number;
  /** Limits on what a request may ask for (see RequestLimits). */
  limits?: RequestLimits;
  /** Finished jobs kept for `list()` / `torchvid jobs`. Defaults to the last 1000 done and 1000 failed. */
  keep?: number;
}

export interface SubmitOptions {
  /** Your own job id (letters, digits, "_", "-"): it also names the result file. Defaults to BullMQ's counter. */
  jobId?: string;
  /** BullMQ priority: 1 is the highest, larger numbers wait longer. Defaults to none (first in, first out). */
  priority?: number;
}

/** One line of `list()`. */
export interface VideoJobSummary {
  id: string;
  kind: VideoJobKind;
  state: VideoJobState;
  prompt: string;
  progress?: VideoJobProgress;
  /** Tries started so far. */
  attempts: number;
  submittedAt: number;
  finishedAt?: number;
  video?: string;
  error?: string;
}

const STATES = ["active", "waiting", "prioritized", "delayed", "completed", "failed"] as const;

export interface VideoJob {
  on(event: "progress", listener: (progress: VideoJobProgress) => void): this;
  once(event: "progress", listener: (progress: VideoJobProgress) => void): this;
  off(event: "progress", listener: (progress: VideoJobProgress) => void): this;
}

/** A queued job: `progress` events while it runs, `finished()` for its result. */
export class VideoJob extends EventEmitter {
  readonly id: string;
  readonly kind: VideoJobKind;
  readonly data: VideoJobData;
  readonly #owner: VideoJobs;
  #watching?: () => void;

  /** @internal made by VideoJobs */
  constructor(owner: VideoJobs, id: string, data: VideoJobData) {
    super();
    this.#owner = owner;
    this.id = id;
    this.kind = data.kind;
    this.data = data;
    // Progress comes through the queue's event stream; listen only once someone asks for it.
    this.on("newListener" as "progress", (name: unknown) => {
      if (name === "progress" && !this.#watching) this.#watching = owner.watchProgress(id, (p) => this.emit("progress", p));
    });
  }

  /** The seed the video is made with (chosen at submit when the request had none). */
  get seed(): number {
    return this.data.request.seed;
  }

  /** Resolves with the result once the video is stored; rejects with the job's error once it failed for good. */
  async finished(): Promise<VideoJobResult> {
    try {
      return await this.#owner.waitFor(this.id);
    } finally {
      this.#watching?.();
      this.#watching = undefined;
    }
  }

  async state(): Promise<VideoJobState> {
    return this.#owner.state(this.id);
  }
}

export class VideoJobs {
  readonly queueName: string;
  #queue?: Queue<VideoJobData, VideoJobResult, VideoJobKind>;
  readonly #label: string;
  readonly #options: ReturnType<typeof resolveConnection>["options"];
  readonly #jobOptions: JobsOptions;
  readonly #limits: RequestLimits;
  #ready?: Promise<void>;
  #events?: Promise<QueueEvents>;

  constructor(options: VideoJobsOptions) {
    const { options: connection, label } = resolveConnection(options.connection);
    this.#options = withQuickReconnect(connection);
    this.#label = label;
    this.queueName = options.queue ?? DEFAULT_QUEUE;
    this.#limits = options.limits ?? {};
    const keep = options.keep ?? 1000;
    this.#jobOptions = {
      attempts: options.attempts ?? 3,
      backoff: { type: "exponential", delay: options.backoffMs ?? 2000 },
      removeOnComplete: { count: keep },
      removeOnFail: { count: keep },
    };
  }

  /** The BullMQ Queue underneath (for what VideoJobs does not wrap: pause, clean, metrics...). */
  get queue(): Queue<VideoJobData, VideoJobResult, VideoJobKind> {
    if (!this.#queue) throw new Error("VideoJobs is not connected yet: await jobs.ready() first");
    return this.#queue;
  }

  /** Connects (once) and throws ERR_TORCHVID_QUEUE naming the URL if Redis cannot be reached. */
  ready(): Promise<void> {
    // The Queue is made only once Redis answered: a client that never connected would retry
    // forever, and its start-up error could surface after close().
    this.#ready ??= checkRedisReachable(this.#options, this.#label).then(async () => {
      const queue = new Queue<VideoJobData, VideoJobResult, VideoJobKind>(this.queueName, { connection: this.#options });
      // A lost connection is retried by ioredis; an unhandled 'error' event would crash the process.
      queue.on("error", () => {});
      // Each finished() waiting at once adds a listener to the queue (removed when it settles).
      queue.setMaxListeners(0);
      this.#queue = queue;
      await queue.waitUntilReady();
    });
    return this.#ready;
  }

  /** Checks a text-to-video request and queues it. A bad request throws here and is not queued. */
  async generate(request: GenerateRequest, options: SubmitOptions = {}): Promise<VideoJob> {
    const checked = checkGenerateRequest(request, this.#limits);
    return this.#add({ kind: "generate", request: { ...checkOne(checked), seed: checked.seed ?? randomSeed() } }, options);
  }

  /** Checks a video-to-video request and queues it. `video` must be a path the workers can read (a shared mount). */
  async upscale(request: UpscaleRequest, options: SubmitOptions = {}): Promise<VideoJob> {
    const checked = checkUpscaleRequest(request, this.#limits);
    return this.#add({ kind: "upscale", request: { ...checkOne(checked), video: resolve(checked.video), seed: checked.seed ?? randomSeed() } }, options);
  }

  /** A handle on a job queued earlier (by any producer), or undefined if Redis no longer has it. */
  async get(jobId: string): Promise<VideoJob | undefined> {
    await this.ready();
    const job = await Job.fromId<VideoJobData, VideoJobResult, VideoJobKind>(this.queue, jobId);
    return job ? new VideoJob(this, jobId, job.data) : undefined;
  }

  /** Jobs by state, newest first within each state: active, waiting, delayed, done, failed. */
  async list(options: { limit?: number } = {}): Promise<VideoJobSummary[]> {
    await this.ready();
    const limit = options.limit ?? 50;
    const out: VideoJobSummary[] = [];
    for (const state of STATES) {
      const jobs = await this.queue.getJobs([state], 0, limit - 1, false);
      for (const job of jobs) if (job) out.push(summarise(job, state));
    }
    return out;
  }

  /** How many jobs are in each state. */
  async counts(): Promise<Record<(typeof STATES)[number], number>> {
    await this.ready();
    return (await this.queue.getJobCounts(...STATES)) as Record<(typeof STATES)[number], number>;
  }

  async state(jobId: string): Promise<VideoJobState> {
    await this.ready();
    return (await this.queue.getJobState(jobId)) as VideoJobState;
  }

  /** @internal VideoJob.finished() */
  async waitFor(jobId: string): Promise<VideoJobResult> {
    const events = await this.#queueEvents();
    const job = await Job.fromId<VideoJobData, VideoJobResult, VideoJobKind>(this.queue, jobId);
    if (!job) throw new RangeError(`Job ${jobId} is not in queue ${this.queueName} (finished jobs beyond the kept ones are removed)`);
    try {
      return await job.waitUntilFinished(events);
    } catch (err) {
      // BullMQ rejects with a bare Error carrying the failedReason: say which job failed.
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`Job ${jobId} failed: ${message}`, { cause: err });
    }
  }

  /** @internal VideoJob's progress events; returns the unsubscribe function. */
  watchProgress(jobId: string, listener: (progress: VideoJobProgress) => void): () => void {
    let stopped = false;
    let off = () => {};
    this.#queueEvents()
      .then((events) => {
        if (stopped) return;
        const onProgress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
          if (id === jobId && typeof data === "object" && data !== null) listener(data as VideoJobProgress);
        };
        events.on("progress", onProgress);
        off = () => events.off("progress", onProgress);
      })
      .catch(() => {});
    return () => {
      stopped = true;
      off();
    };
  }

  /** Closes the Redis connections. */
  async close(): Promise<void> {
    const events = this.#events;
    this.#events = undefined;
    await Promise.allSettled([this.#queue?.close(), events?.then((e) => e.close())]);
  }

  async #add(data: VideoJobData, options: SubmitOptions): Promise<VideoJob> {
    const jobId = options.jobId === undefined ? undefined : checkJobIdForFile(options.jobId);
    if (options.priority !== undefined && !(Number.isInteger(options.priority) && options.priority >= 1 && options.priority <= 2_097_152)) {
      throw new RangeError(`priority must be an integer from 1 (highest) to 2097152 but received ${options.priority}`);
    }
    await this.ready();
    // Listen for events before the job exists, so a fast worker's progress is not missed.
    if (this.#events) await this.#events;
    const job = await this.queue.add(data.kind, data, { ...this.#jobOptions, ...(jobId ? { jobId } : {}), ...(options.priority ? { priority: options.priority } : {}) });
    return new VideoJob(this, job.id!, data);
  }

  #queueEvents(): Promise<QueueEvents> {
    this.#events ??= this.ready().then(async () => {
      const events = new QueueEvents(this.queueName, { connection: this.#options });
      events.on("error", () => {});
      events.setMaxListeners(0);
      await events.waitUntilReady();
      return events;
    });
    return this.#events;
  }
}

/** One video per job: the result is `<job id>.mp4`. More videos of a prompt are more jobs. */
function checkOne<T extends { numVideosPerPrompt?: number }>(request: T): T {
  if (request.numVideosPerPrompt !== undefined && request.numVideosPerPrompt !== 1) {
    throw new RangeError(`numVideosPerPrompt is ${request.numVideosPerPrompt} but a queued job makes one video (<job id>.mp4): submit ${request.numVideosPerPrompt} jobs instead (each gets its own seed)`);
  }
  const { numVideosPerPrompt: _n, ...rest } = request;
  return rest as T;
}

/** A seed that JSON carries exactly and the sidecar can print. */
function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

function summarise(job: Job<VideoJobData, VideoJobResult, VideoJobKind>, state: VideoJobState): VideoJobSummary {
  const progress = typeof job.progress === "object" && job.progress !== null ? (job.progress as unknown as VideoJobProgress) : undefined;
  return {
    id: job.id!,
    kind: job.name,
    state,
    prompt: job.data?.request?.prompt ?? "",
    ...(progress ? { progress } : {}),
    attempts: job.attemptsStarted ?? job.attemptsMade,
    submittedAt: job.timestamp,
    ...(job.finishedOn ? { finishedAt: job.finishedOn } : {}),
    ...(job.returnvalue?.video ? { video: job.returnvalue.video } : {}),
    ...(job.failedReason ? { error: job.failedReason } : {}),
  };
}
