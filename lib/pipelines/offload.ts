/**
 * Model CPU offload (diffusers' enable_model_cpu_offload): every model stays on the CPU and
 * visits the GPU only for its stage. A call with offload runs alone on its weights (the pipeline
 * takes a write turn for it), since the next stage of another call would move the models away.
 */
import { emptyCache } from "../runtime.ts";
import type { ModuleComponent } from "../models/component.ts";
import type { Device } from "../tensor.ts";

export interface StagedModels {
  device: Device;
  textEncoder: ModuleComponent;
  unet: ModuleComponent;
  vae: ModuleComponent;
}

/** Puts `active` on the pipeline's device and, with offload, every other model on the CPU. */
export async function stage(models: StagedModels, active: ModuleComponent, offload: boolean): Promise<void> {
  if (models.device === "cpu") return;
  if (offload) {
    for (const c of [models.textEncoder, models.unet, models.vae]) {
      if (c !== active) await c.to("cpu");
    }
  }
  await active.to(models.device);
}

/** After a run with offload, everything goes back to the CPU. */
export async function unstage(models: StagedModels, offload: boolean): Promise<void> {
  if (models.device === "cpu" || !offload) return;
  for (const c of [models.textEncoder, models.unet, models.vae]) await c.to("cpu");
  emptyCache();
}
