/**
 * The run shared by `generate` and `upscale`: the reporter and Ctrl-C wiring around it, the
 * sampling inputs and progress callbacks of the pipeline call, and the encode + result report.
 */

import { resolve } from "node:path";
import { exportVideo } from "../video/export.ts";
import type { Video } from "../video/types.ts";
import { interruptible, seedForJson, throwIfInterrupted } from "./options.ts";
import { createReporter, type Reporter } from "./progress.ts";
import { schedulerShortName, type GenerateInputs, type PipelineSetup } from "./run-pipeline.ts";

export interface Render {
  reporter: Reporter;
  signal: AbortSignal;
  /** Date.now() when the run began. */
  started: number;
}

/** Runs `body` with a reporter (--json or human) and Ctrl-C wiring, closing both after it, also on error. */
export async function withRender(json: boolean | undefined, body: (r: Render) => Promise<void>): Promise<void> {
  const reporter = createReporter(json);
  const run = interruptible(reporter);
  const started = Date.now();
  try {
    await body({ reporter, signal: run.signal, started });
  } finally {
    run.dispose();
    reporter.close();
  }
}

/** The prompt, sampling values, abort signal and progress callbacks of one pipeline call. */
export function samplingInputs(
  r: Render,
  argv: { prompt: string; negative?: string },
  sampling: { steps: number; guidance: number; seed: number | bigint },
): Omit<GenerateInputs, "numFrames" | "width" | "height"> {
  return {
    prompt: argv.prompt,
    ...(argv.negative !== undefined ? { negativePrompt: argv.negative } : {}),
    numInferenceSteps: sampling.steps,
    guidanceScale: sampling.guidance,
    seed: sampling.seed,
    signal: r.signal,
    onStep: (e) => r.reporter.step(e),
    onDecode: () => r.reporter.phase("decode"),
  };
}

/**
 * After the pipeline: stops if interrupted, writes `video` to `output` and reports the result
 * (with `input` first and `strength` after the prompt where given).
 */
export async function encodeAndReport(
  r: Render,
  video: Video,
  o: { output: string; fps: number; setup: PipelineSetup; steps: number; guidance: number; seed: number | bigint; prompt: string; input?: string; strength?: number },
): Promise<void> {
  throwIfInterrupted(r.signal);
  r.reporter.phase("encode", { total: video.numFrames, message: `Writing ${o.output}` });
  const written = await exportVideo(video, o.output, { fps: o.fps, signal: r.signal, onProgress: (p) => r.reporter.encode(p.frame, p.numFrames) });
  const elapsedMs = Date.now() - r.started;
  r.reporter.result(
    {
      ...(o.input !== undefined ? { input: resolve(o.input) } : {}),
      output: resolve(o.output),
      format: written.format,
      numFrames: written.numFrames,
      width: written.width,
      height: written.height,
      fps: written.fps,
      seed: seedForJson(o.seed),
      prompt: o.prompt,
      ...(o.strength !== undefined ? { strength: o.strength } : {}),
      model: resolve(o.setup.model),
      steps: o.steps,
      guidance: o.guidance,
      scheduler: o.setup.scheduler ?? schedulerShortName(o.setup.schedulerClass),
      schedulerClass: o.setup.schedulerClass ?? null,
      elapsedMs,
    },
    `Wrote ${o.output} (${written.numFrames} frames, ${written.width}x${written.height}, ${written.fps} fps, seed ${o.seed}) in ${(elapsedMs / 1000).toFixed(1)} s`,
  );
}
