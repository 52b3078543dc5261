/**
 * The CLI's ONE contact with the pipelines, schedulers and native info. Everything here follows
 * the pipeline API (TextToVideoSDPipeline / VideoToVideoSDPipeline / schedulerFromName / info);
 * the modules are imported lazily so `--help`, `convert` and usage errors work without the
 * native addon, and a build without the pipelines says so in one line.
 */

import { pathToFileURL } from "node:url";
import { AbortError, TorchvidError } from "../errors.ts";
import { assertVideo, type Video } from "../video/types.ts";
import type { StepEvent } from "./progress.ts";

/** The scheduler names the CLI accepts (diffusers samplers, short names). */
export const SCHEDULER_NAMES = ["ddim", "dpm++", "euler", "euler-a", "unipc", "pndm", "lms", "ddpm", "heun", "lcm"] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** The diffusers class behind each short name (lib/schedulers SCHEDULER_NAMES), to name a model's own scheduler. */
const SCHEDULER_CLASSES: Record<SchedulerName, string> = {
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
};

/** The short name (`ddim`, `dpm++`, ...) of a diffusers scheduler class, or null for another class. */
export function schedulerShortName(className: string | undefined): SchedulerName | null {
  return (Object.keys(SCHEDULER_CLASSES) as SchedulerName[]).find((k) => SCHEDULER_CLASSES[k] === className) ?? null;
}

/** What the CLI uses of a pipeline (the real classes have more). */
interface PipelineLike {
  scheduler: { config: unknown };
  unet: { enableForwardChunking(options: { chunkSize: number; dim: number }): void };
  enableModelCpuOffload(): void;
  enableVaeSlicing(): void;
  loadLoraWeights(path: string, options: { scale: number }): Promise<void>;
  generate(options: Record<string, unknown>): Promise<{ frames: Video[] }>;
  dispose?(): void | Promise<void>;
}

interface PipelineClass {
  fromPretrained(dir: string, options: { device?: string; dtype?: string }): Promise<PipelineLike>;
}

interface Api {
  TextToVideoSDPipeline?: PipelineClass;
  VideoToVideoSDPipeline?: PipelineClass;
  schedulerFromName?: (name: string, config: unknown) => unknown;
  info?: () => unknown;
}

const sourceExt = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

function isMissing(err: unknown, spec: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === "ERR_MODULE_NOT_FOUND" && typeof e.message === "string" && e.message.includes(spec.replace(/^\.\.\//, "").replace(/\.(ts|js)$/, ""));
}

/**
 * Merges the exports of lib/index, lib/pipelines/index and lib/schedulers/index (whichever exist).
 * `TORCHVID_PIPELINE_MODULE` (a file path) puts a stand-in module first: the CLI tests use it to
 * drive every command without a model; nothing else should.
 */
async function loadApi(): Promise<{ api: Api; missing: string[] }> {
  const api: Api = {};
  const missing: string[] = [];
  const override = process.env.TORCHVID_PIPELINE_MODULE;
  const specs = [`../index${sourceExt}`, `../pipelines/index${sourceExt}`, `../schedulers/index${sourceExt}`];
  for (const spec of override ? [pathToFileURL(override).href, ...specs] : specs) {
    try {
      const mod = (await import(new URL(spec, import.meta.url).href)) as Api;
      for (const key of ["TextToVideoSDPipeline", "VideoToVideoSDPipeline", "schedulerFromName", "info"] as const) {
        if (api[key] === undefined && mod[key] !== undefined) (api as Record<string, unknown>)[key] = mod[key];
      }
    } catch (err) {
      // A module that is not there yet is fine; one that fails to load (no addon...) is the answer.
      if (!isMissing(err, spec)) throw err;
      missing.push(`${sourceExt === ".ts" ? "lib" : "dist"}/${spec.slice(3)}`);
    }
  }
  return { api, missing };
}

function need<K extends keyof Api>(api: Api, missing: string[], key: K): NonNullable<Api[K]> {
  const value = api[key];
  if (value === undefined) {
    throw new TorchvidError(
      "ERR_TORCHVID_MODEL_LOAD",
      `${key} is not available in this build of torchvid${missing.length ? ` (${missing.join(", ")} not found)` : ""}`,
    );
  }
  return value as NonNullable<Api[K]>;
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

async function loadPipeline(kind: "TextToVideoSDPipeline" | "VideoToVideoSDPipeline", setup: PipelineSetup): Promise<PipelineLike> {
  const { api, missing } = await loadApi();
  const Pipeline = need(api, missing, kind);
  const pipe = await Pipeline.fromPretrained(setup.model, {
    ...(setup.device !== undefined ? { device: setup.device } : {}),
    ...(setup.dtype !== undefined ? { dtype: setup.dtype } : {}),
  });
  if (setup.scheduler !== undefined) pipe.scheduler = need(api, missing, "schedulerFromName")(setup.scheduler, pipe.scheduler.config) as PipelineLike["scheduler"];
  const scheduler = pipe.scheduler as { className?: string; config?: { _class_name?: string } };
  setup.schedulerClass = scheduler.className ?? scheduler.config?._class_name ?? scheduler.constructor?.name;
  if (setup.cpuOffload) pipe.enableModelCpuOffload();
  if (setup.vaeSlicing) pipe.enableVaeSlicing();
  if (setup.chunkSize !== undefined) pipe.unet.enableForwardChunking({ chunkSize: setup.chunkSize, dim: 1 });
  for (const lora of setup.loras ?? []) await pipe.loadLoraWeights(lora.path, { scale: lora.scale });
  return pipe;
}

async function run(pipe: PipelineLike, options: Record<string, unknown>, inputs: GenerateInputs): Promise<Video> {
  let calls = 0;
  const { onStep, onDecode, ...rest } = inputs;
  try {
    // Ctrl-C while the model was loading: stop before the first step.
    if (inputs.signal.aborted) throw inputs.signal.reason instanceof Error ? inputs.signal.reason : new AbortError("Interrupted");
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries({ ...rest, ...options })) if (v !== undefined) args[k] = v;
    const { frames } = await pipe.generate({
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
    await pipe.dispose?.();
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
      if (rest.signal.aborted) throw rest.signal.reason instanceof Error ? rest.signal.reason : new AbortError("Interrupted");
      const args: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) args[k] = v;
      let calls = 0;
      const { frames } = await pipe.generate({
        ...args,
        onStep: (e: { step: number; numSteps: number; timestep?: number; elapsedMs?: number }) => {
          calls++;
          onStep({ step: Math.min(calls, e.numSteps), numSteps: e.numSteps, timestep: e.timestep, elapsedMs: e.elapsedMs });
          if (calls === e.numSteps) onDecode();
        },
      });
      frames.forEach((v, j) => assertVideo(v, `frames[${j}]`));
      await onVideos(i, frames);
    }
  } finally {
    await pipe.dispose?.();
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
    const { api, missing } = await loadApi();
    return { info: need(api, missing, "info")() };
  } catch (err) {
    return { error: err };
  }
}
