/**
 * One checked JSON request (lib/requests.ts) run on an already loaded pipeline: what the studio
 * and the job worker do for every job. The run gets a view of the loaded weights of the request's
 * kind (fromPipe: no reload, a scheduler of its own), the request's scheduler when it names one,
 * and generate(). `fps` and `model` stay the caller's (export, and which pipeline to pass).
 */
import { requestToOptions, type GenerateRequest, type UpscaleRequest } from "../requests.ts";
import { schedulerFromName } from "../schedulers/index.ts";
import type { Video } from "../video/types.ts";
import type { VideoDiffusionPipeline } from "./base.ts";
import type { StepEvent, VideoToVideoOptions } from "./options.ts";
import { TextToVideoSDPipeline } from "./text-to-video.ts";
import { VideoToVideoSDPipeline } from "./video-to-video.ts";

export interface RequestRun {
  /** The input video of an upscale (a Video, frames or a file path); leave out for text-to-video. */
  video?: VideoToVideoOptions["video"];
  signal?: AbortSignal;
  onStep?: (event: StepEvent) => void;
}

/** Generates the request's first video on `base`'s weights (video-to-video when `run.video` is given). */
export async function generateFromRequest(base: VideoDiffusionPipeline, request: GenerateRequest | UpscaleRequest, run: RequestRun = {}): Promise<Video> {
  const pipe = run.video !== undefined ? VideoToVideoSDPipeline.fromPipe(base) : TextToVideoSDPipeline.fromPipe(base);
  try {
    if (request.scheduler !== undefined) pipe.scheduler = schedulerFromName(request.scheduler, pipe.scheduler.config as Record<string, unknown>);
    const options = { ...requestToOptions(request), signal: run.signal, onStep: run.onStep };
    const output = pipe instanceof VideoToVideoSDPipeline ? await pipe.generate({ ...options, video: run.video! }) : await pipe.generate(options);
    return output.frames[0]!;
  } finally {
    await pipe.dispose();
  }
}
