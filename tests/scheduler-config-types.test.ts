// The scheduler config types are derived from each scheduler's configSpec (ConfigOf), not written
// a second time: the type checker (npm run typecheck, which includes tests/) must accept every
// value the spec accepts and refuse the rest. The @ts-expect-error lines fail the typecheck if a
// wrong value ever type-checks; the test body checks that runtime and types agree.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerDiscreteScheduler,
  UniPCMultistepScheduler,
  type DDIMConfig,
  type DDPMConfig,
  type EulerDiscreteConfig,
  type UniPCMultistepConfig,
} from "../lib/schedulers/index.ts";

test("config types follow the specs: accepted values construct, refused ones are type errors and runtime errors", () => {
  const euler: EulerDiscreteConfig = { interpolation_type: "log_linear", sigma_min: null, beta_schedule: "scaled_linear", trained_betas: null, timestep_spacing: "trailing" };
  const ddpm: DDPMConfig = { variance_type: "learned_range", beta_schedule: "sigmoid", clip_sample_range: 2 };
  const unipc: UniPCMultistepConfig = { solver_p: DPMSolverMultistepScheduler.fromConfig({}), disable_corrector: [0, 1] };
  const ddim: DDIMConfig = { set_alpha_to_one: true, steps_offset: 1 };
  assert.equal(new EulerDiscreteScheduler(euler).config.interpolation_type, "log_linear");
  assert.equal(new DDPMScheduler(ddpm).config.variance_type, "learned_range");
  assert.ok(new UniPCMultistepScheduler(unipc).config.solver_p instanceof DPMSolverMultistepScheduler);
  assert.equal(new DDIMScheduler(ddim).config.steps_offset, 1);

  // @ts-expect-error "cubic" is not an interpolation_type of the spec
  const badEnum: EulerDiscreteConfig = { interpolation_type: "cubic" };
  // @ts-expect-error DDIM has no use_karras_sigmas key
  const badKey: DDIMConfig = { use_karras_sigmas: true };
  // @ts-expect-error beta_start is a number
  const badType: DDIMConfig = { beta_start: "0.1" };
  // @ts-expect-error "sigmoid" is DDPM's schedule, not DDIM's
  const badSchedule: DDIMConfig = { beta_schedule: "sigmoid" };
  // @ts-expect-error solver_p is a Scheduler (or null), not a name
  const badSolver: UniPCMultistepConfig = { solver_p: "dpm++" };
  assert.throws(() => new EulerDiscreteScheduler(badEnum), RangeError);
  assert.throws(() => new DDIMScheduler(badKey), TypeError);
  assert.throws(() => new DDIMScheduler(badType), TypeError);
  assert.throws(() => new DDIMScheduler(badSchedule), RangeError);
  assert.throws(() => new UniPCMultistepScheduler(badSolver), { name: "TypeError", message: /Expected a Scheduler instance or null for UniPCMultistepScheduler config solver_p/ });
});
