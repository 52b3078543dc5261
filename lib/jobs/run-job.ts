/**
 * One job, start to finish, through the public library API only: generateFromRequest on the
 * worker's loaded model (no reload), export to a scratch file, hand it to the store.
 * Knows nothing of BullMQ beyond the progress callback.
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { exportVideo, generateFromRequest, type VideoDiffusionPipeline } from "../index.ts";
import type { JobSidecar, ResultStore } from "./result-store.ts";
import type { VideoJobData, VideoJobProgress, VideoJobResult } from "./types.ts";

export interface JobContext {
  jobId: string;
  queue: string;
  data: VideoJobData;
  /** 1 for the first try. */
  attempt: number;
  submittedAt: number;
  /** The worker's loaded pipeline; each job gets its own view of it (own scheduler state). */
  base: VideoDiffusionPipeline;
  store: ResultStore;
  /** A private folder for the encoded video before it is stored. */
  scratchDir: string;
  signal: AbortSignal;
  onProgress: (progress: VideoJobProgress) => void;
}

/** A job that can never succeed on this worker, whatever the retries: fail it at once. */
export class JobRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JobRefusedError";
  }
}

/** Does a job's `model` name the worker's model? Both are compared as resolved folder paths. */
export function sameModel(requested: string | undefined, loaded: string): boolean {
  return requested === undefined || requested === loaded || resolve(requested) === resolve(loaded);
}

export async function runJob(ctx: JobContext): Promise<VideoJobResult> {
  const { data, base } = ctx;
  const request = data.request;
  if (!sameModel(request.model, base.modelDir)) {
    throw new JobRefusedError(`Job ${ctx.jobId} asks for model ${request.model} but this worker serves ${base.modelDir}: run workers for that model on a queue of their own (torchvid worker --model ${request.model} --queue NAME) and submit there`);
  }
  const startedAt = Date.now();
  const video = await generateFromRequest(base, request, {
    ...(data.kind === "upscale" ? { video: data.request.video } : {}),
    signal: ctx.signal,
    onStep: (e) => ctx.onProgress({ phase: "steps", step: e.step, numSteps: e.numSteps }),
  });
  const generatedAt = Date.now();

  ctx.onProgress({ phase: "encode" });
  const fps = request.fps ?? 8;
  const scratch = join(ctx.scratchDir, `${ctx.jobId}.mp4`);
  const written = await exportVideo(video, scratch, { fps, signal: ctx.signal });
  const encodedAt = Date.now();

  ctx.onProgress({ phase: "store" });
  const sidecar: JobSidecar = {
    jobId: ctx.jobId,
    queue: ctx.queue,
    kind: data.kind,
    request: { ...request },
    seed: request.seed,
    model: base.modelDir,
    device: String(base.device),
    attempt: ctx.attempt,
    worker: { host: hostname(), pid: process.pid },
    video: { file: `${ctx.jobId}.mp4`, numFrames: written.numFrames, width: written.width, height: written.height, fps: written.fps },
    timings: { submittedAt: ctx.submittedAt, startedAt, generateMs: generatedAt - startedAt, encodeMs: encodedAt - generatedAt },
  };
  const stored = await ctx.store.put(ctx.jobId, written.path, sidecar);
  const timings = { ...sidecar.timings, storedAt: Date.now() };
  return { jobId: ctx.jobId, video: stored.video, sidecar: stored.sidecar, seed: request.seed, model: base.modelDir, attempt: ctx.attempt, timings };
}
