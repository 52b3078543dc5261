/**
 * LCMScheduler (latent consistency models, Luo et al. 2023), as diffusers 0.27.2 scheduling_lcm.py:
 * few-step sampling for consistency-distilled UNets (MCM, T2V-Turbo LoRAs): each step predicts the
 * clean sample with the consistency boundary condition and re-noises it to the next timestep.
 */
import type { Tensor } from "../tensor.ts";
import { AlphaScheduler } from "./alpha-base.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type SetTimestepsOptions, type StepOptions } from "./base.ts";
import { predictX0AndEps } from "./ddim.ts";
import { betaKeys, K, thresholdingKeys } from "./keys.ts";
import { f32, npLinspace, type TimestepSpacing } from "./math.ts";
import { lincomb, stepNoise } from "./ops.ts";

/** The LCMScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type LCMConfig = ConfigOf<typeof LCMScheduler.configSpec>;

export class LCMScheduler extends AlphaScheduler {
  static override readonly className = "LCMScheduler";
  static override readonly configSpec = {
    ...betaKeys({ beta_start: 0.00085, beta_end: 0.012, beta_schedule: "scaled_linear" }),
    original_inference_steps: K.int(50, 1),
    clip_sample: K.bool(false),
    clip_sample_range: K.num(1.0),
    set_alpha_to_one: K.bool(true),
    steps_offset: K.int(0),
    prediction_type: K.prediction(),
    ...thresholdingKeys(),
    timestep_spacing: K.spacing("leading"),
    timestep_scaling: K.num(10.0),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  constructor(config: LCMConfig = {}) {
    super(config as Record<string, unknown>);
  }

  /**
   * LCM's schedule: `numInferenceSteps` evenly skipped among the `original_inference_steps` the
   * model was distilled on; `strength` < 1 (img2img) keeps only the first strength part of those.
   */
  override setTimesteps(numInferenceSteps: number, options: SetTimestepsOptions & { originalInferenceSteps?: number } = {}): void {
    const n = this.checkNumSteps(numInferenceSteps);
    const strength = options.strength === undefined ? 1 : this.checkStrength(options.strength);
    const N = this.numTrainTimesteps;
    const original = options.originalInferenceSteps ?? (this.config.original_inference_steps as number);
    if (original > N) throw new RangeError(`original_inference_steps (${original}) cannot be larger than num_train_timesteps (${N})`);
    if (n > original) {
      throw new RangeError(`numInferenceSteps (${n}) cannot be larger than original_inference_steps (${original}): LCM samples a subset of the distillation schedule`);
    }
    const k = Math.floor(N / original);
    const origin: number[] = [];
    for (let i = 1; i <= Math.floor(original * strength); i++) origin.push(i * k - 1);
    const skipping = Math.floor(origin.length / n);
    if (skipping < 1) {
      throw new RangeError(`The combination of original_inference_steps x strength (${original} x ${strength}) leaves fewer than ${n} timesteps: lower numInferenceSteps or raise strength`);
    }
    origin.reverse();
    const idx = npLinspace(0, origin.length, n, false).map(Math.floor);
    this.timesteps = idx.map((i) => origin[i]);
    this.numInferenceSteps = n;
    this.stepIndexValue = null;
    this.beginIndexValue = null;
    this.checkScheduleRange(n);
  }

  protected override buildSchedule(n: number): void {
    this.setTimesteps(n);
  }

  /** c_skip, c_out of the consistency boundary condition at `t` (sigma_data = 0.5). */
  private scalings(t: number): [number, number] {
    const sigmaData = 0.5;
    const scaled = f32(t * (this.config.timestep_scaling as number));
    const cSkip = f32(f32(sigmaData ** 2) / f32(f32(scaled * scaled) + sigmaData ** 2));
    const cOut = f32(scaled / f32(Math.sqrt(f32(f32(scaled * scaled) + sigmaData ** 2))));
    return [cSkip, cOut];
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const i = this.stepIndexValue as number;
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : timestep;
    const a = this.alphaProd(timestep);
    const ap = this.alphaProdPrev(prevT);
    const [cSkip, cOut] = this.scalings(timestep);
    const { x0 } = predictX0AndEps(this, modelOutput, sample, a, { needEps: false });
    const denoised = x0.axpby(cOut, cSkip, sample);
    let prev: Tensor;
    if (i !== (this.numInferenceSteps as number) - 1) {
      const { noise, owned } = stepNoise(modelOutput, options);
      prev = lincomb([
        [f32(Math.sqrt(ap)), denoised],
        [f32(Math.sqrt(f32(1 - ap))), noise],
      ]);
      if (owned) noise.dispose();
      denoised.dispose();
    } else prev = denoised;
    x0.dispose();
    this.stepIndexValue = i + 1;
    return prev;
  }
}
registerSpec(LCMScheduler.className, LCMScheduler.configSpec);
