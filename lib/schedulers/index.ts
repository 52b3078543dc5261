/**
 * The schedulers (diffusers 0.27.2 semantics) and a registry for the CLI:
 * `schedulerFromName("dpm++", pipe.scheduler.config)` or `schedulerFromConfig(json)` by `_class_name`.
 */
import { invalidParameter } from "../validate.ts";
import { isPlainObject, Scheduler, type SchedulerClass } from "./base.ts";
import { DDIMScheduler } from "./ddim.ts";
import { DDPMScheduler } from "./ddpm.ts";
import { DPMSolverMultistepScheduler } from "./dpmsolver-multistep.ts";
import { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from "./euler.ts";
import { HeunDiscreteScheduler } from "./heun.ts";
import { LCMScheduler } from "./lcm.ts";
import { LMSDiscreteScheduler } from "./lms.ts";
import { PNDMScheduler } from "./pndm.ts";
import { UniPCMultistepScheduler } from "./unipc.ts";

export { Scheduler, DIFFUSERS_VERSION } from "./base.ts";
export type { StepOptions, SetTimestepsOptions, StrengthTimesteps, ConfigSpec } from "./base.ts";
export {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  HeunDiscreteScheduler,
  LCMScheduler,
  LMSDiscreteScheduler,
  PNDMScheduler,
  UniPCMultistepScheduler,
};
export type { DDIMConfig } from "./ddim.ts";
export type { DDPMConfig } from "./ddpm.ts";
export type { DPMSolverMultistepConfig } from "./dpmsolver-multistep.ts";
export type { EulerAncestralDiscreteConfig, EulerDiscreteConfig } from "./euler.ts";
export type { HeunDiscreteConfig } from "./heun.ts";
export type { LCMConfig } from "./lcm.ts";
export type { LMSDiscreteConfig } from "./lms.ts";
export type { PNDMConfig } from "./pndm.ts";
export type { UniPCMultistepConfig } from "./unipc.ts";

/** Every scheduler class by its diffusers class name. */
export const SCHEDULER_CLASSES = {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  HeunDiscreteScheduler,
  LCMScheduler,
  LMSDiscreteScheduler,
  PNDMScheduler,
  UniPCMultistepScheduler,
} as const satisfies Record<string, SchedulerClass>;

/** Short names for the CLI (`--scheduler dpm++`). */
export const SCHEDULER_NAMES = {
  ddim: DDIMScheduler,
  "dpm++": DPMSolverMultistepScheduler,
  euler: EulerDiscreteScheduler,
  "euler-a": EulerAncestralDiscreteScheduler,
  unipc: UniPCMultistepScheduler,
  pndm: PNDMScheduler,
  lms: LMSDiscreteScheduler,
  ddpm: DDPMScheduler,
  heun: HeunDiscreteScheduler,
  lcm: LCMScheduler,
} as const satisfies Record<string, SchedulerClass>;

export type SchedulerName = keyof typeof SCHEDULER_NAMES;

/**
 * The scheduler called `name`, configured from `baseConfig` (usually the model folder's
 * scheduler_config.json) as diffusers `XScheduler.from_config(base_config, **overrides)`.
 */
export function schedulerFromName(name: SchedulerName, baseConfig: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}): Scheduler {
  const cls = Object.hasOwn(SCHEDULER_NAMES, name) ? SCHEDULER_NAMES[name] : undefined;
  if (cls === undefined) {
    throw invalidParameter("scheduler name", `one of ${Object.keys(SCHEDULER_NAMES).map((n) => JSON.stringify(n)).join(", ")}`, name, typeof name === "string" ? "range" : "type");
  }
  return (cls as SchedulerClass).fromConfig(baseConfig, overrides);
}

/** The scheduler a diffusers config names in `_class_name` (e.g. a model's scheduler_config.json). */
export function schedulerFromConfig(config: Record<string, unknown>, overrides: Record<string, unknown> = {}): Scheduler {
  if (!isPlainObject(config)) throw invalidParameter("config", "a scheduler config object", config, "type");
  const name = config._class_name;
  const cls = typeof name === "string" && Object.hasOwn(SCHEDULER_CLASSES, name) ? SCHEDULER_CLASSES[name as keyof typeof SCHEDULER_CLASSES] : undefined;
  if (cls === undefined) {
    throw new RangeError(
      `Unsupported scheduler _class_name ${JSON.stringify(name)}: torchvid has ${Object.keys(SCHEDULER_CLASSES).join(", ")}`,
    );
  }
  return (cls as SchedulerClass).fromConfig(config, overrides);
}
