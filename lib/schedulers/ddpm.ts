/**
 * DDPMScheduler (Ho et al. 2020), as diffusers 0.27.2 scheduling_ddpm.py: variance types
 * fixed_small / fixed_small_log / fixed_large / fixed_large_log / learned, clip_sample,
 * thresholding, timestep_spacing.
 */
import type { Tensor } from "../tensor.ts";
import { AlphaScheduler } from "./alpha-base.ts";
import { type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { predictX0AndEps } from "./ddim.ts";
import { betaKeys, K, thresholdingKeys } from "./keys.ts";
import { f32, type TimestepSpacing } from "./math.ts";
import { lincomb, release, stepNoise } from "./ops.ts";

export interface DDPMConfig {
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: "linear" | "scaled_linear" | "squaredcos_cap_v2" | "sigmoid";
  trained_betas?: number[] | null;
  variance_type?: "fixed_small" | "fixed_small_log" | "fixed_large" | "fixed_large_log" | "learned";
  clip_sample?: boolean;
  prediction_type?: "epsilon" | "v_prediction" | "sample";
  thresholding?: boolean;
  dynamic_thresholding_ratio?: number;
  clip_sample_range?: number;
  sample_max_value?: number;
  timestep_spacing?: TimestepSpacing;
  steps_offset?: number;
  rescale_betas_zero_snr?: boolean;
}

export class DDPMScheduler extends AlphaScheduler {
  static override readonly className = "DDPMScheduler";
  static override readonly configSpec: ConfigSpec = {
    ...betaKeys({ schedules: ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"] }),
    variance_type: K.oneOf("fixed_small", ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"]),
    clip_sample: K.bool(true),
    prediction_type: K.prediction(),
    ...thresholdingKeys({ clipSampleRange: true }),
    timestep_spacing: K.spacing("leading"),
    steps_offset: K.int(0),
    rescale_betas_zero_snr: K.bool(false),
  };

  constructor(config: DDPMConfig = {}) {
    super(config as Record<string, unknown>);
  }

  protected override get supportsBeginIndex(): boolean {
    return false;
  }

  private previousTimestep(t: number): number {
    return t - Math.floor(this.numTrainTimesteps / (this.numInferenceSteps ?? this.numTrainTimesteps));
  }

  /** The variance (or its log / std, per variance_type) of step t (diffusers _get_variance). */
  private variance(t: number): { value: number; kind: "variance" | "std" } {
    const prevT = this.previousTimestep(t);
    const a = this.alphasCumprod[t];
    const ap = this.alphaProdPrev(prevT);
    const beta = f32(1 - f32(a / ap));
    let variance = f32(f32(f32(1 - ap) / f32(1 - a)) * beta);
    variance = Math.max(variance, 1e-20);
    switch (this.config.variance_type) {
      case "fixed_small":
        return { value: variance, kind: "variance" };
      case "fixed_small_log":
        return { value: f32(Math.exp(0.5 * f32(Math.log(variance)))), kind: "std" };
      case "fixed_large":
        return { value: beta, kind: "variance" };
      case "fixed_large_log":
        return { value: f32(Math.log(beta)), kind: "variance" };
      default:
        throw new RangeError(`variance_type "${String(this.config.variance_type)}" needs the model's predicted variance, which torchvid's DDPMScheduler does not support`);
    }
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    const t = timestep;
    const prevT = this.previousTimestep(t);
    const a = this.alphaProd(t);
    const ap = this.alphaProdPrev(prevT);
    const b = f32(1 - a);
    const bp = f32(1 - ap);
    const curAlpha = f32(a / ap);
    const curBeta = f32(1 - curAlpha);
    const { x0 } = predictX0AndEps(this, modelOutput, sample, a, { needEps: false });
    const cX0 = f32(f32(f32(Math.sqrt(ap)) * curBeta) / b);
    const cX = f32(f32(f32(Math.sqrt(curAlpha)) * bp) / b);
    let prev: Tensor;
    if (t > 0) {
      const v = this.variance(t);
      const std = v.kind === "std" ? v.value : f32(Math.sqrt(v.value));
      const { noise, owned } = stepNoise(modelOutput, options);
      prev = lincomb([
        [cX0, x0],
        [cX, sample],
        [std, noise],
      ]);
      if (owned) noise.dispose();
    } else {
      prev = x0.axpby(cX0, cX, sample);
    }
    release([], x0);
    return prev;
  }
}
registerSpec(DDPMScheduler.className, DDPMScheduler.configSpec);
