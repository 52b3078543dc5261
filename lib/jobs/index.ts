/** The job queue: many workers (one per GPU, on many machines) fed through BullMQ on Redis. */
export { VideoJobs, VideoJob, type VideoJobsOptions, type SubmitOptions, type VideoJobSummary } from "./producer.ts";
export { startWorker, VideoWorker, type StartWorkerOptions, type WorkerEvents } from "./worker.ts";
export { FileResultStore } from "./file-store.ts";
export type { ResultStore, StoredResult, JobSidecar } from "./result-store.ts";
export { parseRedisUrl, redactUrl, type RedisConnectionInput } from "./connection.ts";
export { DEFAULT_QUEUE, type VideoJobData, type VideoJobKind, type VideoJobProgress, type VideoJobResult, type VideoJobState } from "./types.ts";
