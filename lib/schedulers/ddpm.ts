/**
 * DDPMScheduler (Ho et al. 2020), as diffusers 0.27.2 scheduling_ddpm.py: variance types
 * fixed_small / fixed_small_log / fixed_large / fixed_large_log / learned / learned_range (the model
 * predicts its variance in extra channels), clip_sample,
 * thresholding, timestep_spacing.
 */
import type { Tensor } from "../tensor.ts";
import { AlphaScheduler } from "./alpha-base.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { predictX0AndEps } from "./ddim.ts";
import { betaKeys, K, thresholdingKeys } from "./keys.ts";
import { f32, type TimestepSpacing } from "./math.ts";
import { lincomb, release, stepNoise, tensorClassOf } from "./ops.ts";

/** The DDPMScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type DDPMConfig = ConfigOf<typeof DDPMScheduler.configSpec>;

export class DDPMScheduler extends AlphaScheduler {
  static override readonly className = "DDPMScheduler";
  static override readonly configSpec = {
    ...betaKeys({ schedules: ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"] }),
    variance_type: K.oneOf("fixed_small", ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"]),
    clip_sample: K.bool(true),
    prediction_type: K.prediction(),
    ...thresholdingKeys({ clipSampleRange: true }),
    timestep_spacing: K.spacing("leading"),
    steps_offset: K.int(0),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  constructor(config: DDPMConfig = {}) {
    super(config as Record<string, unknown>);
  }

  protected override get supportsBeginIndex(): boolean {
    return false;
  }

  private previousTimestep(t: number): number {
    return t - Math.floor(this.numTrainTimesteps / (this.numInferenceSteps ?? this.numTrainTimesteps));
  }

  /** The variance (or its log / std, per variance_type) of step t (diffusers _get_variance), for the fixed types. */
  private variance(t: number): { value: number; kind: "variance" | "std" } {
    const { variance, beta } = this.varianceBounds(t);
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
        throw new Error(`unreachable: variance_type ${String(this.config.variance_type)} has a learned variance`);
    }
  }

  /** The posterior variance (clamped at 1e-20) and beta_t of step t: the two ends of learned_range. */
  private varianceBounds(t: number): { variance: number; beta: number } {
    const prevT = this.previousTimestep(t);
    const a = this.alphasCumprod[t];
    const ap = this.alphaProdPrev(prevT);
    const beta = f32(1 - f32(a / ap));
    const variance = Math.max(f32(f32(f32(1 - ap) / f32(1 - a)) * beta), 1e-20);
    return { variance, beta };
  }

  /**
   * The noise std of a learned variance type, per element, from the model's predicted variance:
   * "learned": sqrt(v); "learned_range": exp(0.5 * (frac * log(beta_t) + (1 - frac) * log(posterior
   * variance))), frac = (v + 1) / 2 (diffusers _get_variance). The exp runs on the host (the Tensor
   * API has no exp and adding one means rebuilding the addon): one read of the variance channels
   * per step, only for the UNets that predict a variance (text-to-video UNets do not).
   */
  private learnedStd(t: number, predictedVariance: Tensor): Tensor {
    if (this.config.variance_type === "learned") return predictedVariance.sqrt();
    const { variance, beta } = this.varianceBounds(t);
    const minLog = f32(Math.log(variance));
    const maxLog = f32(Math.log(beta));
    const pv = predictedVariance.dtype === "float32" ? predictedVariance : predictedVariance.to("float32");
    const v = pv.dataSync() as Float32Array;
    if (pv !== predictedVariance) pv.dispose();
    const std = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const frac = f32(f32(v[i] + 1) / 2);
      const logVar = f32(f32(frac * maxLog) + f32(f32(1 - frac) * minLog));
      std[i] = f32(Math.exp(f32(0.5 * logVar)));
    }
    const T = tensorClassOf(predictedVariance);
    return T.from(std, predictedVariance.shape, { dtype: predictedVariance.dtype, device: predictedVariance.device as never });
  }

  /**
   * diffusers: a model output of twice the sample's channels, with a learned variance type, is
   * (prediction, predicted variance) along dim 1. A learned type without the variance channels
   * cannot step: say so instead of diffusers' TypeError on None.
   */
  private splitLearned(modelOutput: Tensor, sample: Tensor): { output: Tensor; predictedVariance: Tensor | null } {
    const learned = this.config.variance_type === "learned" || this.config.variance_type === "learned_range";
    const C = sample.shape[1];
    if (learned && modelOutput.shape.length >= 2 && modelOutput.shape[1] === 2 * C) {
      return { output: modelOutput.slice(1, 0, C), predictedVariance: modelOutput.slice(1, C, 2 * C) };
    }
    if (learned) {
      throw new RangeError(
        `DDPMScheduler variance_type "${String(this.config.variance_type)}" needs a model that predicts its variance: a model output of 2 x ${C} channels (prediction, then variance) but received shape [${modelOutput.shape.join(", ")}]. Use variance_type "fixed_small" (the default) for this model.`,
      );
    }
    return { output: modelOutput, predictedVariance: null };
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    const t = timestep;
    const { output, predictedVariance } = this.splitLearned(modelOutput, sample);
    const prevT = this.previousTimestep(t);
    const a = this.alphaProd(t);
    const ap = this.alphaProdPrev(prevT);
    const b = f32(1 - a);
    const bp = f32(1 - ap);
    const curAlpha = f32(a / ap);
    const curBeta = f32(1 - curAlpha);
    const { x0 } = predictX0AndEps(this, output, sample, a, { needEps: false });
    const cX0 = f32(f32(f32(Math.sqrt(ap)) * curBeta) / b);
    const cX = f32(f32(f32(Math.sqrt(curAlpha)) * bp) / b);
    let prev: Tensor;
    if (t > 0) {
      const { noise, owned } = stepNoise(output, options);
      if (predictedVariance !== null) {
        const std = this.learnedStd(t, predictedVariance);
        const scaled = noise.mul(std);
        const mean = x0.axpby(cX0, cX, sample);
        prev = mean.add(scaled);
        release([], std, scaled, mean);
      } else {
        const v = this.variance(t);
        const std = v.kind === "std" ? v.value : f32(Math.sqrt(v.value));
        prev = lincomb([
          [cX0, x0],
          [cX, sample],
          [std, noise],
        ]);
      }
      if (owned) noise.dispose();
    } else {
      prev = x0.axpby(cX0, cX, sample);
    }
    if (output !== modelOutput) release([], output, predictedVariance);
    release([], x0);
    return prev;
  }
}
registerSpec(DDPMScheduler.className, DDPMScheduler.configSpec);
