/**
 * Where finished videos go. A worker encodes each video to a local scratch file, then hands it to
 * a ResultStore with its sidecar. The filesystem store (file-store.ts) renames both into a shared
 * folder; an S3-compatible store would upload the same two objects under the same keys. Every
 * store keys results by job id, so a retried job overwrites its own result instead of adding one.
 */

/** The JSON written next to each video: enough to reproduce it and to see where time went. */
export interface JobSidecar {
  jobId: string;
  queue: string;
  kind: "generate" | "upscale";
  /** The checked request as queued (prompt, sizes, steps, scheduler, ...), seed included. */
  request: Record<string, unknown>;
  seed: number;
  /** The model folder the worker loaded. */
  model: string;
  device: string;
  /** Which attempt produced this result (1 = first). */
  attempt: number;
  worker: { host: string; pid: number };
  video: { file: string; numFrames: number; width: number; height: number; fps: number };
  timings: {
    /** Epoch ms when the job was queued. */
    submittedAt: number;
    /** Epoch ms when this attempt started on the worker. */
    startedAt: number;
    /** Denoising and decoding. */
    generateMs: number;
    /** Writing the video file (to the worker's scratch folder, before the store takes it). */
    encodeMs: number;
  };
}

/** Where a stored result can be found. */
export interface StoredResult {
  jobId: string;
  /** The video: a file path for the filesystem store (a URL for a remote one). */
  video: string;
  /** The JSON sidecar, likewise. */
  sidecar: string;
}

export interface ResultStore {
  /** Names the store in logs and messages (a folder, a bucket URL). */
  readonly location: string;
  /** Checks that results can be written (folder exists and is writable...); throws a clear error otherwise. */
  check(): Promise<void>;
  /**
   * Stores the video (a local file the store may move or delete) and its sidecar under `jobId`,
   * all or nothing: readers see either no result or the whole one, never a partial file. Storing
   * the same id again replaces the earlier result.
   */
  put(jobId: string, videoFile: string, sidecar: JobSidecar): Promise<StoredResult>;
  /** The stored result of `jobId`, or undefined. */
  get(jobId: string): Promise<StoredResult | undefined>;
}
