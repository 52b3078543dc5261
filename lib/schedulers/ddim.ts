/**
 * DDIMScheduler (Song et al. 2020, https://arxiv.org/abs/2010.02502), as diffusers 0.27.2
 * scheduling_ddim.py: eta, clip_sample / thresholding, set_alpha_to_one, steps_offset,
 * timestep_spacing, prediction_type, rescale_betas_zero_snr.
 */
import type { Tensor } from "../tensor.ts";
import { expectNumber } from "../validate.ts";
import { AlphaScheduler } from "./alpha-base.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type Scheduler, type StepOptions } from "./base.ts";
import { betaKeys, K, PREDICTION_TYPES, thresholdingKeys } from "./keys.ts";
import { f32, type TimestepSpacing } from "./math.ts";
import { lincombInto, release, stepNoise, thresholdSample } from "./ops.ts";

/** The DDIMScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type DDIMConfig = ConfigOf<typeof DDIMScheduler.configSpec>;

/**
 * x0 and epsilon predicted from a model output (diffusers' step 3 of DDIM/DDPM/LCM), with
 * clipping or dynamic thresholding of x0. Returns new tensors (eps may be `modelOutput` itself).
 */
export function predictX0AndEps(
  s: Scheduler,
  modelOutput: Tensor,
  sample: Tensor,
  alphaProdT: number,
  options: { needEps: boolean; useClippedModelOutput?: boolean },
): { x0: Tensor; eps: Tensor | null } {
  const c = s.config;
  const sa = f32(Math.sqrt(alphaProdT));
  const sb = f32(Math.sqrt(f32(1 - alphaProdT)));
  let x0: Tensor;
  let eps: Tensor | null = null;
  switch (c.prediction_type) {
    case "epsilon":
      x0 = sample.axpby(1 / sa, -sb / sa, modelOutput);
      eps = modelOutput;
      break;
    case "sample":
      x0 = modelOutput.clone();
      if (options.needEps) eps = sample.axpby(1 / sb, -sa / sb, modelOutput);
      break;
    case "v_prediction":
      x0 = sample.axpby(sa, -sb, modelOutput);
      if (options.needEps) eps = modelOutput.axpby(sa, sb, sample);
      break;
    default:
      throw new RangeError(`prediction_type given as ${String(c.prediction_type)} must be one of "epsilon", "sample", or "v_prediction" for ${s.className}`);
  }
  let clipped = false;
  if (c.thresholding === true) {
    const t = thresholdSample(x0, c.dynamic_thresholding_ratio as number, c.sample_max_value as number);
    x0.dispose();
    x0 = t;
    clipped = true;
  } else if (c.clip_sample === true) {
    const r = c.clip_sample_range as number;
    const t = x0.clamp(-r, r);
    x0.dispose();
    x0 = t;
    clipped = true;
  }
  if (options.useClippedModelOutput && clipped && options.needEps) {
    if (eps !== null && eps !== modelOutput) eps.dispose();
    eps = sample.axpby(1 / sb, -sa / sb, x0);
  }
  return { x0, eps };
}

export class DDIMScheduler extends AlphaScheduler {
  static override readonly className = "DDIMScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    clip_sample: K.bool(true),
    set_alpha_to_one: K.bool(true),
    steps_offset: K.int(0),
    prediction_type: K.prediction(),
    ...thresholdingKeys({ clipSampleRange: true }),
    timestep_spacing: K.spacing("leading"),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  constructor(config: DDIMConfig = {}) {
    super(config as Record<string, unknown>);
  }

  protected override get supportsBeginIndex(): boolean {
    return false;
  }

  private variance(t: number, prev: number): number {
    const a = this.alphasCumprod[t];
    const ap = this.alphaProdPrev(prev);
    const b = f32(1 - a);
    const bp = f32(1 - ap);
    return f32(f32(bp / b) * f32(1 - f32(a / ap)));
  }

  /**
   * One DDIM step (formulas 12 and 16 of the paper). `eta` (default 0) weights the added noise;
   * with eta > 0 the noise comes from `noise` or is drawn from `generator`.
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions & { useClippedModelOutput?: boolean } = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    const eta = options.eta === undefined ? 0 : expectNumber(options.eta, "eta", { min: 0 });
    const t = timestep;
    const prev = t - Math.floor(this.numTrainTimesteps / (this.numInferenceSteps as number));
    const a = this.alphaProd(t);
    const ap = this.alphaProdPrev(prev);
    const { x0, eps } = predictX0AndEps(this, modelOutput, sample, a, { needEps: true, useClippedModelOutput: options.useClippedModelOutput });
    const variance = this.variance(t, prev);
    const std = f32(eta * f32(Math.sqrt(variance)));
    const dirCoef = f32(Math.sqrt(f32(f32(1 - ap) - f32(std * std))));
    const sap = f32(Math.sqrt(ap));
    // Written into x0 (a new tensor of this step): the same floats as a lincomb, one tensor fewer.
    const prevSample = lincombInto(x0, [
      [sap, x0],
      [dirCoef, eps as Tensor],
    ]);
    if (eta > 0) {
      const { noise, owned } = stepNoise(modelOutput, options);
      prevSample.axpbyInPlace(1, f32(f32(Math.sqrt(variance)) * eta), noise);
      if (owned) noise.dispose();
    }
    release([modelOutput, sample, prevSample], x0, eps ?? undefined);
    return prevSample;
  }

  /** Deterministic DDIM (eta 0) without dynamic thresholding is element by element. */
  override stepIsElementwise(options: StepOptions = {}): boolean {
    return !(typeof options.eta === "number" && options.eta > 0) && this.config.thresholding !== true;
  }
}
registerSpec(DDIMScheduler.className, DDIMScheduler.configSpec);
