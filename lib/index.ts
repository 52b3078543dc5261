/**
 * torchvid: text-to-video diffusion for Node.js on libtorch.
 * Everything public is exported here: `import { TextToVideoSDPipeline } from "torchvid"`.
 */
export { TextToVideoSDPipeline, VideoToVideoSDPipeline, VideoDiffusionPipeline, generateFromRequest, type RequestRun } from "./pipelines/index.ts";
export type { GenerateOptions, VideoToVideoOptions, StepEvent, OutputType, VideoOutput, LatentOutput, ImageInput, FromPretrainedOptions } from "./pipelines/index.ts";
export * from "./schedulers/index.ts";
export * from "./tokenizer/index.ts";
export * from "./lora/index.ts";
export * from "./video/index.ts";
export { Tensor, Generator, disposeAll, type DType, type Device, type HostArray } from "./tensor.ts";
export { TorchModule, onDevice, type ModuleValue, type LoadModuleOptions } from "./module.ts";
export { info, defaultDevice, memoryStats, resetPeakMemoryStats, emptyCache, synchronize, setNumThreads, type TorchvidInfo } from "./runtime.ts";
export { TorchvidError, NativeLoadError, ModelFormatError, AbortError, type TorchvidErrorCode } from "./errors.ts";
export { UNet3DConditionModel, type ForwardChunkingOptions } from "./models/unet.ts";
export { CLIPTextModel } from "./models/text-encoder.ts";
export { AutoencoderKL } from "./models/vae.ts";
export { ModelFolder, type ModelManifest } from "./models/model-folder.ts";
export { readSafetensors, parseSafetensors, type SafetensorsFile, type SafetensorsEntry } from "./safetensors.ts";
export { checkGenerateRequest, checkUpscaleRequest, requestToOptions, type GenerateRequest, type UpscaleRequest, type RequestLimits } from "./requests.ts";
export * from "./hub/index.ts";
