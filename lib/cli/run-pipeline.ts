/**
 * The CLI's ONE contact with the pipelines, schedulers and native info. Everything here follows
 * the pipeline API (TextToVideoSDPipeline / VideoToVideoSDPipeline / schedulerFromName / info),
 * loaded with a typed `import()` of lib/index.ts on first use, so `--help`, `convert` and usage
 * errors work without the native addon. Tests put a stand-in API in place through `main()`'s
 * `pipelineApi` parameter (withPipelineApi below); nothing in the environment can load code here.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { AbortError } from "../errors.ts";
import type { Device, DType } from "../tensor.ts";
import { assertVideo, type Video } from "../video/types.ts";
import type { StepEvent } from "./progress.ts";

/** The scheduler names the CLI accepts (diffusers samplers, short names). */
export const SCHEDULER_NAMES = ["ddim", "dpm++", "euler", "euler-a", "unipc", "pndm", "lms", "ddpm", "heun", "lcm"] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** What the CLI uses of the library. */
export type PipelineApi = Pick<typeof import("../index.ts"), "TextToVideoSDPipeline" | "VideoToVideoSDPipeline" | "schedulerFromName" | "info">;

/** Where the library comes from: the real one unless main() was given another. */
const apiSource = new AsyncLocalStorage<() => Promise<PipelineApi>>();

const loadLibrary = (): Promise<PipelineApi> => import("../index.ts");

/** Runs `fn` (one CLI invocation) with `load` as the pipeline API (main()'s `pipelineApi` option). */
export function withPipelineApi<T>(load: (() => Promise<PipelineApi>) | undefined, fn: () => Promise<T>): Promise<T> {
  return load === undefined ? fn() : apiSource.run(load, fn);
}

function loadApi(): Promise<PipelineApi> {
  return (apiSource.getStore() ?? loadLibrary)();
}

export interface PipelineSetup {
  model: string;
  device?: string;
  dtype?: string;
  scheduler?: string;
  cpuOffload?: boolean;
  vaeSlicing?: boolean;
  chunkSize?: number;
  loras?: { path: string; scale: number }[];
}

export interface GenerateInputs {
  prompt: string;
  negativePrompt?: string;
  numFrames?: number;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number | bigint;
  width?: number;
  height?: number;
  signal: AbortSignal;
  onStep: (event: StepEvent) => void;
  /** Called once the denoising loop is done and the VAE starts decoding. */
  onDecode: () => void;
}

type Pipeline = InstanceType<PipelineApi["TextToVideoSDPipeline"]> | InstanceType<PipelineApi["VideoToVideoSDPipeline"]>;

async function loadPipeline(kind: "TextToVideoSDPipeline" | "VideoToVideoSDPipeline", setup: PipelineSetup): Promise<Pipeline> {
  const api = await loadApi();
  const pipe = await api[kind].fromPretrained(setup.model, {
    ...(setup.device !== undefined ? { device: setup.device as Device } : {}),
    ...(setup.dtype !== undefined ? { dtype: setup.dtype as DType } : {}),
  });
  if (setup.scheduler !== undefined) pipe.scheduler = api.schedulerFromName(setup.scheduler as SchedulerName, pipe.scheduler.config);
  if (setup.cpuOffload) pipe.enableModelCpuOffload();
  if (setup.vaeSlicing) pipe.enableVaeSlicing();
  if (setup.chunkSize !== undefined) await pipe.unet.enableForwardChunking({ chunkSize: setup.chunkSize, dim: 1 });
  for (const lora of setup.loras ?? []) await pipe.loadLoraWeights(lora.path, { scale: lora.scale });
  return pipe;
}

async function run(pipe: Pipeline, options: Record<string, unknown>, inputs: GenerateInputs): Promise<Video> {
  let calls = 0;
  const { onStep, onDecode, ...rest } = inputs;
  try {
    // Ctrl-C while the model was loading: stop before the first step.
    if (inputs.signal.aborted) throw inputs.signal.reason instanceof Error ? inputs.signal.reason : new AbortError("Interrupted");
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries({ ...rest, ...options })) if (v !== undefined) args[k] = v;
    const { frames } = await (pipe as { generate(o: Record<string, unknown>): Promise<{ frames: Video[] }> }).generate({
      ...args,
      onStep: (e: { step: number; numSteps: number; timestep?: number; elapsedMs?: number }) => {
        calls++;
        onStep({ step: Math.min(calls, e.numSteps), numSteps: e.numSteps, timestep: e.timestep, elapsedMs: e.elapsedMs });
        if (calls === e.numSteps) onDecode();
      },
    });
    const video = frames[0];
    assertVideo(video, "frames[0]");
    return video;
  } finally {
    await pipe.dispose();
  }
}

/** Loads a text-to-video pipeline from `setup`, generates, and returns the first video. */
export async function runTextToVideo(setup: PipelineSetup, inputs: GenerateInputs, onLoaded?: () => void): Promise<Video> {
  const pipe = await loadPipeline("TextToVideoSDPipeline", setup);
  onLoaded?.();
  return run(pipe, {}, inputs);
}

/** Loads a video-to-video pipeline and re-renders `video` with `strength`. */
export async function runVideoToVideo(
  setup: PipelineSetup,
  inputs: GenerateInputs & { video: Video; strength: number },
  onLoaded?: () => void,
): Promise<Video> {
  const pipe = await loadPipeline("VideoToVideoSDPipeline", setup);
  onLoaded?.();
  const { video, strength, ...rest } = inputs;
  return run(pipe, { video, strength }, rest);
}

/** `info()` of the package, or the error that stopped it. */
export async function nativeInfo(): Promise<{ info?: unknown; error?: unknown }> {
  try {
    return { info: (await loadApi()).info() };
  } catch (err) {
    return { error: err };
  }
}
