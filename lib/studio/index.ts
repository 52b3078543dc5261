/** torchvid studio: `torchvid serve`, a local web page and HTTP API over the library. */
export { startStudio, checkServerOptions, PRESETS, type ServerOptions, type RunningStudio } from "./server.ts";
export { Studio, RequestError, STUDIO_LIMITS, type StudioOptions } from "./studio.ts";
export type { Job, JobState, JobKind, PublicJob, JobResult } from "./job.ts";
export { LATENT_RGB_FACTORS } from "./preview.ts";
