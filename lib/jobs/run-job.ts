/**
 * One job, start to finish, through the public library API only: a pipeline over the worker's
 * loaded model (fromPipe: no reload), generate, export to a scratch file, hand it to the store.
 * Knows nothing of BullMQ beyond the progress callback.
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { TextToVideoSDPipeline, VideoToVideoSDPipeline, exportVideo, requestToOptions, schedulerFromName, type VideoDiffusionPipeline } from "../index.ts";
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
  const pipe = data.kind === "upscale" ? VideoToVideoSDPipeline.fromPipe(base) : TextToVideoSDPipeline.fromPipe(base);
  if (request.scheduler !== undefined) pipe.scheduler = schedulerFromName(request.scheduler, pipe.scheduler.config as Record<string, unknown>);

  const options = {
    ...requestToOptions(request),
    ...(data.kind === "upscale" ? { video: data.request.video } : {}),
    signal: ctx.signal,
    onStep: (e: { step: number; numSteps: number }) => ctx.onProgress({ phase: "steps", step: e.step, numSteps: e.numSteps }),
  };
  let output;
  try {
    output = await (pipe as VideoToVideoSDPipeline).generate(options as Parameters<VideoToVideoSDPipeline["generate"]>[0]);
  } finally {
    await pipe.dispose();
  }
  const video = output.frames[0]!;
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
