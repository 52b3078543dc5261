/**
 * One studio job: what it asks for, where it stands, what it made. The same object is kept in
 * memory, written beside the video as `<id>.json` and (with `position`) returned by the API.
 */
import type { GenerateRequest, UpscaleRequest } from "../index.ts";

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export type JobKind = "generate" | "upscale";

export const FINAL_STATES: readonly JobState[] = ["done", "failed", "cancelled"];

export interface JobResult {
  width: number;
  height: number;
  numFrames: number;
  fps: number;
  /** Seconds from start to the written file. */
  seconds: number;
}

export interface Job {
  id: string;
  kind: JobKind;
  state: JobState;
  /** The checked request, with the seed that was used (a random one when the request had none). */
  settings: (GenerateRequest | UpscaleRequest) & { seed: number; fps: number };
  /** Upscale: the input file (a name in --out) and the job that made it, when it was a job. */
  source?: { file: string; job?: string };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  step: number;
  numSteps: number;
  error: string | null;
  /** URL path of the mp4 once done. */
  video: string | null;
  result?: JobResult;
}

/** What `GET /api/jobs/:id` returns: the job plus its place in the device queue. */
export type PublicJob = Job & { position: number | null };

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state);
}
