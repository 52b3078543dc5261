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

/**
 * The scheduler names the CLI accepts (diffusers samplers, short names) and the diffusers class
 * behind each, to name a model's own scheduler. The same table as lib/schedulers' SCHEDULER_NAMES,
 * kept here as plain strings so `--help` and flag checks never load the library.
 */
const SCHEDULER_CLASSES = {
  ddim: "DDIMScheduler",
  "dpm++": "DPMSolverMultistepScheduler",
  euler: "EulerDiscreteScheduler",
  "euler-a": "EulerAncestralDiscreteScheduler",
  unipc: "UniPCMultistepScheduler",
  pndm: "PNDMScheduler",
  lms: "LMSDiscreteScheduler",
  ddpm: "DDPMScheduler",
  heun: "HeunDiscreteScheduler",
  lcm: "LCMScheduler",
} as const;
export type SchedulerName = keyof typeof SCHEDULER_CLASSES;
export const SCHEDULER_NAMES = Object.keys(SCHEDULER_CLASSES) as SchedulerName[];

/** The short name (`ddim`, `dpm++`, ...) of a diffusers scheduler class, or null for another class. */
export function schedulerShortName(className: string | undefined): SchedulerName | null {
  return SCHEDULER_NAMES.find((k) => SCHEDULER_CLASSES[k] === className) ?? null;
}

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
  /** Set once the pipeline is loaded: the diffusers class of the scheduler it runs (the model's own, or --scheduler's). */
  schedulerClass?: string;
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
  const scheduler = pipe.scheduler as { className?: string; config?: { _class_name?: string } };
  setup.schedulerClass = scheduler.className ?? scheduler.config?._class_name ?? scheduler.constructor?.name;
  if (setup.cpuOffload) pipe.enableModelCpuOffload();
  if (setup.vaeSlicing) pipe.enableVaeSlicing();
  if (setup.chunkSize !== undefined) await pipe.unet.enableForwardChunking({ chunkSize: setup.chunkSize, dim: 1 });
  for (const lora of setup.loras ?? []) await pipe.loadLoraWeights(lora.path, { scale: lora.scale });
  return pipe;
}

/** Only the defined values: an option left out takes the library's default. */
function definedOnly(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = v;
  return out;
}

/** One generate() call with the CLI's step reporting (onDecode once the last step is done). */
async function generateWith(pipe: Pipeline, args: Record<string, unknown>, onStep: GenerateInputs["onStep"], onDecode: () => void): Promise<Video[]> {
  let calls = 0;
  const { frames } = await (pipe as { generate(o: Record<string, unknown>): Promise<{ frames: Video[] }> }).generate({
    ...args,
    onStep: (e: { step: number; numSteps: number; timestep?: number; elapsedMs?: number }) => {
      calls++;
      onStep({ step: Math.min(calls, e.numSteps), numSteps: e.numSteps, timestep: e.timestep, elapsedMs: e.elapsedMs });
      if (calls === e.numSteps) onDecode();
    },
  });
  frames.forEach((v, j) => assertVideo(v, `frames[${j}]`));
  return frames;
}

function throwIfInterrupted(signal: AbortSignal): void {
  // Ctrl-C while the model was loading (or between videos): stop before the next step.
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError("Interrupted");
}

async function run(pipe: Pipeline, options: Record<string, unknown>, inputs: GenerateInputs): Promise<Video> {
  const { onStep, onDecode, ...rest } = inputs;
  try {
    throwIfInterrupted(inputs.signal);
    return (await generateWith(pipe, definedOnly({ ...rest, ...options }), onStep, onDecode))[0]!;
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

/**
 * One pipeline for many generations (`--prompts`, `--num-videos`): loads once, then for each
 * input generates every video (numVideosPerPrompt) and hands them to `onVideos` before the next.
 */
export async function runTextToVideoBatch(
  setup: PipelineSetup,
  inputs: (GenerateInputs & { numVideosPerPrompt?: number; eta?: number })[],
  onVideos: (index: number, videos: Video[]) => Promise<void>,
  onLoaded?: () => void,
): Promise<void> {
  const pipe = await loadPipeline("TextToVideoSDPipeline", setup);
  onLoaded?.();
  try {
    for (let i = 0; i < inputs.length; i++) {
      const { onStep, onDecode, ...rest } = inputs[i]!;
      throwIfInterrupted(rest.signal);
      await onVideos(i, await generateWith(pipe, definedOnly(rest), onStep, onDecode));
    }
  } finally {
    await pipe.dispose();
  }
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
