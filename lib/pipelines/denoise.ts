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

/** Runs every timestep; returns the final latents (the caller owns them). The UNet must be on its device. */
export async function denoise(args: DenoiseArgs): Promise<Tensor> {
  const { unet, scheduler, timesteps, embeds, guidanceScale, eta, onStep, signal } = args;
  const cfg = guidanceScale > 1;
  // Stochastic steps draw from one generator (diffusers passes the pipeline's generator on; a list uses the first).
  const generator = Array.isArray(args.generator) ? args.generator[0] : args.generator;
  let latents = args.latents;
  const [b, c, f, h, w] = latents.shape;
  // Every timestep goes to the device once; each step takes a view (no per-step host copy).
  const onHost = Tensor.from(Float32Array.from(timesteps), [timesteps.length]);
  const timestepTensor = args.device === "cpu" ? onHost : await onHost.toDevice(args.device);
  const start = performance.now();
  try {
    for (let i = 0; i < timesteps.length; i++) {
      throwIfAborted(signal);
      const t = timesteps[i];
      const doubled = cfg ? Tensor.cat([latents, latents], 0) : latents;
      const modelInput = scheduler.scaleModelInput(doubled, t);
      const tView = timestepTensor.slice(0, i, i + 1).reshape([]);
      let noisePred = await unet.forward(modelInput, tView, embeds);
      tView.dispose();
      if (doubled !== latents && doubled !== modelInput) doubled.dispose();
      if (modelInput !== latents) modelInput.dispose();
      if (cfg) {
        const [uncond, text] = noisePred.chunk(2, 0);
        const diff = text.sub(uncond);
        const guided = uncond.axpby(1, guidanceScale, diff);
        disposeAll(uncond, text, diff, noisePred);
        noisePred = guided;
      }
      const toFrames = (x: Tensor) => x.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
      const sample = toFrames(latents);
      const output = toFrames(noisePred);
      const prev = scheduler.step(output, t, sample, { generator, eta });
      const next = prev.reshape([b, f, c, h, w]).permute([0, 2, 1, 3, 4]).contiguous();
      disposeAll(sample, output, prev, noisePred, latents);
      latents = next;
      onStep?.({ step: i + 1, numSteps: timesteps.length, timestep: t, elapsedMs: performance.now() - start, latents });
    }
    return latents;
  } catch (err) {
    latents.dispose();
    emptyCache();
    throw err;
  } finally {
    disposeAll(onHost, timestepTensor);
  }
}
