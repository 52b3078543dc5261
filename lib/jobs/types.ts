/**
 * What travels through Redis: a job's data (a checked request, plain JSON), its progress and its
 * return value. Producer and worker agree on these and on nothing else.
 */
import type { GenerateRequest, UpscaleRequest } from "../requests.ts";

/** The queue name when none is given (the CLI's `--queue` default). */
export const DEFAULT_QUEUE = "torchvid";

/** BullMQ job names: one per kind of work. */
export type VideoJobKind = "generate" | "upscale";

/** A queued job's data. The seed is always set (at submit), so a retry makes the same video. */
export type VideoJobData =
  | { kind: "generate"; request: GenerateRequest & { seed: number } }
  | { kind: "upscale"; request: UpscaleRequest & { seed: number } };

/** What `job.updateProgress` carries. */
export interface VideoJobProgress {
  phase: "load" | "steps" | "encode" | "store";
  /** Denoising steps done (phase "steps"). */
  step?: number;
  numSteps?: number;
}

/** A finished job's return value: where its result is, and how long it took. */
export interface VideoJobResult {
  jobId: string;
  /** The video (a file path with the filesystem store). */
  video: string;
  /** Its JSON sidecar (settings, seed, model, timings). */
  sidecar: string;
  seed: number;
  model: string;
  attempt: number;
  /** Epoch ms (submittedAt, startedAt, storedAt: the result is in the store) and durations in ms. */
  timings: { submittedAt: number; startedAt: number; generateMs: number; encodeMs: number; storedAt: number };
}

/** A job's state as BullMQ names it ("completed" is shown as done by the CLI). */
export type VideoJobState = "waiting" | "prioritized" | "delayed" | "active" | "completed" | "failed" | "waiting-children" | "unknown";
