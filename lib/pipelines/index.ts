export { TextToVideoSDPipeline } from "./text-to-video.ts";
export { VideoToVideoSDPipeline } from "./video-to-video.ts";
export { VideoDiffusionPipeline, type FromPretrainedOptions, type PipelineComponents } from "./base.ts";
export type { GenerateOptions, VideoToVideoOptions, StepEvent, OutputType, VideoOutput, LatentOutput, ImageInput } from "./options.ts";
export { generateFromRequest, type RequestRun } from "./from-request.ts";
