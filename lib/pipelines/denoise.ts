/**
 * The denoising loop both pipelines share: CFG batch, scaled input, UNet, guidance, scheduler
 * step on [B*F, C, h, w] (the layout diffusers hands the scheduler, which fixes the noise layout
 * of stochastic steps). Latents never leave the device.
 */
import { emptyCache } from "../runtime.ts";
import { Tensor, disposeAll, type Device, type Generator } from "../tensor.ts";
import type { Scheduler } from "../schedulers/index.ts";
import type { UNet3DConditionModel } from "../models/unet.ts";
import { throwIfAborted } from "./checks.ts";
import type { StepEvent } from "./options.ts";

export interface DenoiseArgs {
  unet: UNet3DConditionModel;
  /** This call's own scheduler, its timesteps already set. */
  scheduler: Scheduler;
  device: Device;
  /** Initial latents [B, C, F, h, w]; consumed. */
  latents: Tensor;
  timesteps: readonly number[];
  embeds: Tensor;
  guidanceScale: number;
  generator: Generator | Generator[];
  eta: number;
  onStep?: (e: StepEvent) => void;
  signal?: AbortSignal;
}

/**
 * Runs every timestep; returns the final latents (the caller owns them). The UNet must be on its
 * device. Per step, on the host: one copy for the CFG batch, guidance written into the UNet's own
 * output, and (when the scheduler's step is element by element: DDIM, DPM-Solver) the step on the
 * latents as they are, written into them; otherwise the step runs on diffusers' frame layout.
 */
export async function denoise(args: DenoiseArgs): Promise<Tensor> {
  const { unet, scheduler, timesteps, embeds, guidanceScale, eta, onStep, signal } = args;
  // Stochastic steps draw from one generator (diffusers passes the pipeline's generator on; a list uses the first).
  const generator = Array.isArray(args.generator) ? args.generator[0] : args.generator;
  const stepOptions = { generator, eta, inPlace: true };
  // [B, C, F, h, w] straight to the scheduler is exact only when the step is elementwise:
  // noise draws and per-row thresholding follow diffusers' [B*F, C, h, w] layout.
  const elementwise = scheduler.stepIsElementwise(stepOptions);
  let latents = args.latents;
  const [b, c, f, h, w] = latents.shape;
  // On a GPU every timestep goes to the device once and each step takes a view (no per-step
  // host-to-device copy); on the CPU a 0-dim tensor per step is one call.
  let deviceTimesteps: Tensor | null = null;
  if (args.device !== "cpu") {
    const host = Tensor.from(Float32Array.from(timesteps), [timesteps.length]);
    deviceTimesteps = await host.toDevice(args.device);
    host.dispose();
  }
  const start = performance.now();
  try {
    for (let i = 0; i < timesteps.length; i++) {
      throwIfAborted(signal);
      const t = timesteps[i];
      // Scaling is element by element, so scaling before the CFG doubling gives the same floats.
      const modelInput = scheduler.scaleModelInput(latents, t);
      const tView = deviceTimesteps ? deviceTimesteps.slice(0, i, i + 1).reshape([]) : null;
      let prediction: Tensor;
      let unetMs: number;
      try {
        // With guidance, the doubling (diffusers' torch.cat([latents] * 2)) and the combination
        // uncond + g * (text - uncond) run on the device thread around the UNet (forwardGuided).
        ({ prediction, forwardMs: unetMs } = await unet.forwardGuided(modelInput, tView ?? t, embeds, guidanceScale));
      } finally {
        tView?.dispose();
        if (modelInput !== latents) modelInput.dispose();
      }
      try {
        latents = elementwise ? stepInPlace(scheduler, prediction, t, latents, stepOptions) : stepOnFrames(scheduler, prediction, t, latents, stepOptions, [b, c, f, h, w]);
      } finally {
        prediction.dispose();
      }
      onStep?.({ step: i + 1, numSteps: timesteps.length, timestep: t, elapsedMs: performance.now() - start, latents, unetMs });
    }
    return latents;
  } catch (err) {
    latents.dispose();
    emptyCache();
    throw err;
  } finally {
    deviceTimesteps?.dispose();
  }
}

type StepArgs = { generator: Generator; eta: number; inPlace: boolean };

/** The step on the latents' own layout; the result replaces `latents` (often it is `latents`, updated). */
function stepInPlace(scheduler: Scheduler, output: Tensor, t: number, latents: Tensor, options: StepArgs): Tensor {
  const prev = scheduler.step(output, t, latents, options);
  if (prev !== latents) latents.dispose();
  return prev;
}

/** The step on diffusers' [B*F, C, h, w] layout (fixes the layout of drawn noise), back to [B, C, F, h, w]. */
function stepOnFrames(scheduler: Scheduler, output: Tensor, t: number, latents: Tensor, options: StepArgs, [b, c, f, h, w]: number[]): Tensor {
  const toFrames = (x: Tensor) => x.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
  const sample = toFrames(latents);
  const frames = toFrames(output);
  const prev = scheduler.step(frames, t, sample, options);
  const next = prev.reshape([b, f, c, h, w]).permute([0, 2, 1, 3, 4]).contiguous();
  disposeAll([...new Set([sample, frames, prev, latents])]);
  return next;
}
