/**
 * The studio's service layer, below the HTTP routes: checks and records submissions, queues them
 * on the device, runs them, tells subscribers what happens, and cancels. One Studio per --out.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { checkGenerateRequest, checkUpscaleRequest, type Device, type GenerateRequest, type RequestLimits, type UpscaleRequest } from "../index.ts";
import { isFinal, type Job, type JobKind, type PublicJob } from "./job.ts";
import { JobEvents } from "./job-events.ts";
import { JobQueue } from "./job-queue.ts";
import { JobRunner } from "./job-runner.ts";
import { JobStore } from "./job-store.ts";
import { fileInOut, fileUrl, isJobId, newJobId } from "./paths.ts";
import { PipelineCache } from "./pipeline-cache.ts";

export interface StudioOptions {
  /** Folder of results: `<id>.mp4` + `<id>.json` per job (created if missing). */
  outDir: string;
  /** The model folder jobs use when they name none. */
  model: string;
  device?: Device;
  /** Most jobs waiting or running; one more is refused (HTTP 429). Defaults to 64. */
  maxQueue?: number;
  /** Request limits (frames, size, steps, prompt length). */
  limits?: RequestLimits;
  /** Where warnings go (skipped files, failed writes). Defaults to console.warn. */
  warn?: (message: string) => void;
}

/** A request the studio refuses (HTTP 400): the message names the field and the fix. */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RequestError";
  }
}

/** Default limits of a studio: generous for one GPU, but no 1000-frame accidents. */
export const STUDIO_LIMITS: Required<RequestLimits> = { maxSize: 2048, maxFrames: 256, maxSteps: 500, maxPromptLength: 2000 };

export class Studio {
  readonly outDir: string;
  readonly store: JobStore;
  readonly events = new JobEvents();
  readonly queue: JobQueue;
  readonly pipelines: PipelineCache;
  readonly limits: RequestLimits;
  #runner: JobRunner;
  #warn: (message: string) => void;
  #lastPositions = new Map<string, number>();

  constructor(options: StudioOptions) {
    this.outDir = options.outDir;
    if (!existsSync(this.outDir)) mkdirSync(this.outDir, { recursive: true });
    else if (!statSync(this.outDir).isDirectory()) throw new RangeError(`--out ${this.outDir} is a file: pass a folder for the videos`);
    this.#warn = options.warn ?? ((m) => console.warn(`torchvid studio: ${m}`));
    this.limits = { ...STUDIO_LIMITS, ...options.limits };
    this.store = new JobStore(this.outDir);
    this.pipelines = new PipelineCache({ defaultModel: options.model, ...(options.device !== undefined ? { device: options.device } : {}) });
    this.#runner = new JobRunner({ outDir: this.outDir, pipelines: this.pipelines });
    this.queue = new JobQueue((id, signal) => this.#run(id, signal), { limit: options.maxQueue ?? 64, onChange: () => this.#positionsChanged() });
    // Jobs left waiting by the last run go back in the queue, oldest first, over the limit if need be.
    for (const job of this.store.load(this.#warn)) this.queue.push(job.id, { force: true });
  }

  publicJob(job: Job): PublicJob {
    return { ...job, position: this.queue.position(job.id) };
  }

  get(id: string): PublicJob | undefined {
    const job = isJobId(id) ? this.store.get(id) : undefined;
    return job && this.publicJob(job);
  }

  list(): PublicJob[] {
    return this.store.list().map((j) => this.publicJob(j));
  }

  /** Checks a `POST /api/generate` body and queues it. Throws RequestError (400) or QueueFullError (429). */
  async submitGenerate(body: unknown): Promise<PublicJob> {
    const request = asRequestError(() => checkGenerateRequest(body, this.limits));
    this.#checkStudioFields(request);
    return this.#submit("generate", request);
  }

  /** Checks a `POST /api/upscale` body (its `video`: a job id or a file in --out) and queues it. */
  async submitUpscale(body: unknown): Promise<PublicJob> {
    const request = asRequestError(() => checkUpscaleRequest(body, this.limits));
    this.#checkStudioFields(request);
    let source: { file: string; job?: string };
    const sourceJob = this.store.get(request.video);
    if (sourceJob) {
      if (sourceJob.state !== "done") throw new RequestError(`video: job ${sourceJob.id} is ${sourceJob.state}, not done; upscale a finished job`);
      source = { file: `${sourceJob.id}.mp4`, job: sourceJob.id };
      if (request.prompt === undefined || request.prompt === "") request.prompt = sourceJob.settings.prompt ?? "";
      if (request.negativePrompt === undefined && sourceJob.settings.negativePrompt !== undefined) request.negativePrompt = sourceJob.settings.negativePrompt;
    } else {
      const path = fileInOut(this.outDir, request.video);
      if (path === null || !existsSync(path) || !statSync(path).isFile()) {
        throw new RequestError(`video ${JSON.stringify(request.video)} is neither a job id nor a file in the output folder: pass the id of a done job (GET /api/jobs) or the name of a video file there`);
      }
      source = { file: request.video };
    }
    return this.#submit("upscale", request, source);
  }

  /** `DELETE /api/jobs/:id`. */
  cancel(id: string): { job: PublicJob; status: "cancelled" | "cancelling" | "final" } | undefined {
    const job = isJobId(id) ? this.store.get(id) : undefined;
    if (!job) return undefined;
    if (isFinal(job.state)) return { job: this.publicJob(job), status: "final" };
    const how = this.queue.cancel(id);
    // "removed": it was waiting. null: not in the queue at all (should not happen): end it too, never leave it hanging.
    if (how !== "aborting") {
      this.#finish(job, { state: "cancelled" });
      return { job: this.publicJob(job), status: "cancelled" };
    }
    return { job: this.publicJob(job), status: "cancelling" };
  }

  /** Stops the running job (it goes back to queued on disk, and runs again at the next start). */
  async close(): Promise<void> {
    const running = this.queue.runningId;
    this.#closing = true;
    await this.queue.stop();
    if (running) {
      const job = this.store.get(running);
      if (job) {
        Object.assign(job, { state: "queued", step: 0, error: null, startedAt: undefined });
        await this.store.save(job).catch(() => {});
      }
    }
    await this.store.flush();
  }
  #closing = false;

  #checkStudioFields(request: GenerateRequest | UpscaleRequest): void {
    if (request.numVideosPerPrompt !== undefined && request.numVideosPerPrompt !== 1) {
      throw new RequestError(`numVideosPerPrompt must be 1 in the studio (one video per job) but received ${request.numVideosPerPrompt}: submit several jobs instead`);
    }
  }

  async #submit(kind: JobKind, request: GenerateRequest | UpscaleRequest, source?: { file: string; job?: string }): Promise<PublicJob> {
    const settings = { ...request, seed: request.seed ?? Math.floor(Math.random() * 2 ** 32), fps: request.fps ?? 8 };
    const job: Job = {
      id: newJobId(),
      kind,
      state: "queued",
      settings,
      ...(source ? { source } : {}),
      createdAt: new Date().toISOString(),
      step: 0,
      numSteps: settings.numInferenceSteps ?? 50,
      error: null,
      video: null,
    };
    this.queue.push(job.id); // throws QueueFullError before anything is recorded
    this.store.add(job).catch((err) => this.#warn(`Could not write ${job.id}.json: ${(err as Error).message}`));
    return this.publicJob(job);
  }

  async #run(id: string, signal: AbortSignal): Promise<void> {
    const job = this.store.get(id);
    if (!job) return;
    Object.assign(job, { state: "running", startedAt: new Date().toISOString(), step: 0, error: null });
    this.#saveQuietly(job);
    this.events.emit(id, "state", this.publicJob(job));
    try {
      const result = await this.#runner.run(job, signal, {
        step: (e) => {
          job.step = e.step;
          job.numSteps = e.numSteps;
          const secondsPerStep = e.elapsedMs / 1000 / e.step;
          this.events.emit(id, "step", { step: e.step, numSteps: e.numSteps, elapsedMs: e.elapsedMs, secondsPerStep, etaSeconds: secondsPerStep * (e.numSteps - e.step) });
        },
        preview: (p) => this.events.emit(id, "preview", p),
      });
      // A cancel that arrives after the file is written is too late: the job is done, nothing is thrown away.
      this.#finish(job, { state: "done", video: fileUrl(`${id}.mp4`), result });
    } catch (err) {
      if (this.#closing) return; // close() puts it back in the queue
      if (signal.aborted) this.#finish(job, { state: "cancelled" });
      else this.#finish(job, { state: "failed", error: errorMessage(err) });
    }
  }

  #finish(job: Job, change: Partial<Job>): void {
    Object.assign(job, change, { finishedAt: new Date().toISOString() });
    this.#saveQuietly(job);
    this.events.emit(job.id, "state", this.publicJob(job));
  }

  #saveQuietly(job: Job): void {
    this.store.save(job).catch((err) => this.#warn(`Could not write ${job.id}.json: ${(err as Error).message}`));
  }

  /** Tells every waiting job's subscribers its new place, when it moved. */
  #positionsChanged(): void {
    const now = new Map<string, number>();
    const running = this.queue.runningId;
    if (running) now.set(running, 0);
    this.queue.waiting.forEach((id, i) => now.set(id, i + 1));
    for (const [id, position] of now) {
      if (this.#lastPositions.get(id) !== position) this.events.emit(id, "position", { position });
    }
    this.#lastPositions = now;
  }
}

/** The checkers' TypeError/RangeError (they name the field) become RequestErrors: 400, not 500. */
function asRequestError<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new RequestError(err.message);
    throw err;
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && code.startsWith("ERR_TORCHVID_") ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
