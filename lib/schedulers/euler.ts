/**
 * EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (Karras et al. 2022, Algorithm 2 /
 * k-diffusion's sample_euler_ancestral), as diffusers 0.27.2.
 */
import type { Tensor } from "../tensor.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { betaKeys, K } from "./keys.ts";
import { f32, sigmasOf, type TimestepSpacing, torchLinspaceF32 } from "./math.ts";
import { lincomb, release, stepNoise } from "./ops.ts";
import { SigmaScheduler } from "./sigma-base.ts";

/** The EulerDiscreteScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type EulerDiscreteConfig = ConfigOf<typeof EulerDiscreteScheduler.configSpec>;

/** x0 predicted at noise level sigma (epsilon / v_prediction / sample). */
export function sigmaPredX0(prediction: unknown, modelOutput: Tensor, sample: Tensor, sigma: number, className: string, allowSample = true): Tensor {
  if (prediction === "epsilon") return sample.axpby(1, -sigma, modelOutput);
  if (prediction === "v_prediction") {
    const d = f32(f32(sigma * sigma) + 1);
    return modelOutput.axpby(-sigma / f32(Math.sqrt(d)), 1 / d, sample);
  }
  if (prediction === "sample" && allowSample) return modelOutput.clone();
  throw new RangeError(`prediction_type given as ${String(prediction)} must be one of "epsilon" or "v_prediction"${allowSample ? ' or "sample"' : ""} for ${className}`);
}

export class EulerDiscreteScheduler extends SigmaScheduler {
  static override readonly className = "EulerDiscreteScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    prediction_type: K.prediction(),
    interpolation_type: K.oneOf("linear", ["linear", "log_linear"]),
    use_karras_sigmas: K.bool(false),
    sigma_min: K.num(null, true),
    sigma_max: K.num(null, true),
    timestep_spacing: K.spacing("linspace"),
    timestep_type: K.oneOf("discrete", ["discrete", "continuous"]),
    steps_offset: K.int(0),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  constructor(config: EulerDiscreteConfig = {}) {
    super(config as Record<string, unknown>, { zeroSnrEpsilon: true });
  }

  protected buildSchedule(n: number): void {
    let { timesteps, sigmas, logSigmas } = this.spacedSigmas(n, true);
    if (this.config.interpolation_type === "log_linear") {
      // diffusers: torch.linspace(log(sigma_max), log(sigma_min), n + 1).exp(): n + 1 sigmas evenly
      // spaced in log space, independent of the timesteps (which stay the spaced grid); with the
      // appended 0 the last step ends at sigma_min, as in diffusers.
      const train = sigmasOf(this.alphasCumprod);
      const logs = torchLinspaceF32(f32(Math.log(train[train.length - 1])), f32(Math.log(train[0])), n + 1);
      sigmas = Array.from(logs, (v) => f32(Math.exp(v)));
    }
    if (this.config.use_karras_sigmas) ({ timesteps, sigmas } = this.karras(sigmas, logSigmas, n));
    const s32 = sigmas.map(f32);
    if (this.config.timestep_type === "continuous" && this.config.prediction_type === "v_prediction") {
      this.timesteps = s32.map((s) => f32(0.25 * f32(Math.log(s))));
    } else this.timesteps = timesteps.map(f32);
    this.sigmas = [...s32, 0];
    this.numInferenceSteps = n;
  }

  /**
   * One Euler step. `sChurn` & co. are diffusers' s_churn/s_tmin/s_tmax/s_noise (stochastic
   * churn; off by default, then no noise is drawn).
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions & { sChurn?: number; sTmin?: number; sTmax?: number; sNoise?: number } = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const i = this.stepIndexValue as number;
    const x = this.upcast(sample);
    const sigma = this.sigmas[i];
    const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = options;
    const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (this.sigmas.length - 1), 2 ** 0.5 - 1) : 0;
    const sigmaHat = f32(sigma * (gamma + 1));
    let xs = x;
    if (gamma > 0) {
      const { noise, owned } = stepNoise(modelOutput, options);
      xs = x.axpby(1, sNoise * Math.sqrt(sigmaHat * sigmaHat - sigma * sigma), noise);
      if (owned) noise.dispose();
    }
    // diffusers: pred_x0 = sample - sigma_hat * eps (v/sample predictions use sigma), derivative = (sample - pred_x0) / sigma_hat
    const x0 = sigmaPredX0(this.config.prediction_type, modelOutput, xs, this.config.prediction_type === "epsilon" ? sigmaHat : sigma, this.className);
    const diff = xs.sub(x0);
    const derivative = diff.div(sigmaHat);
    const dt = f32(this.sigmas[i + 1] - sigmaHat);
    const prev = lincomb([
      [1, xs],
      [dt, derivative],
    ]);
    release([sample], x, xs, x0, diff, derivative);
    this.stepIndexValue = i + 1;
    return this.downcast(prev, modelOutput);
  }
}
registerSpec(EulerDiscreteScheduler.className, EulerDiscreteScheduler.configSpec);

/** The EulerAncestralDiscreteScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type EulerAncestralDiscreteConfig = ConfigOf<typeof EulerAncestralDiscreteScheduler.configSpec>;

export class EulerAncestralDiscreteScheduler extends SigmaScheduler {
  static override readonly className = "EulerAncestralDiscreteScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    prediction_type: K.prediction(),
    timestep_spacing: K.spacing("linspace"),
    steps_offset: K.int(0),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  constructor(config: EulerAncestralDiscreteConfig = {}) {
    super(config as Record<string, unknown>, { zeroSnrEpsilon: true });
  }

  protected buildSchedule(n: number): void {
    const { timesteps, sigmas } = this.spacedSigmas(n, true);
    this.timesteps = timesteps.map(f32);
    this.sigmas = [...sigmas.map(f32), 0];
    this.numInferenceSteps = n;
  }

  /** One ancestral step: Euler to sigma_down, then fresh noise of std sigma_up. */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const i = this.stepIndexValue as number;
    const x = this.upcast(sample);
    const sigma = this.sigmas[i];
    const x0 = sigmaPredX0(this.config.prediction_type, modelOutput, x, sigma, this.className, false);
    const from = sigma;
    const to = this.sigmas[i + 1];
    const from2 = f32(from * from);
    const to2 = f32(to * to);
    const sigmaUp = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
    const sigmaDown = f32(Math.sqrt(f32(to2 - f32(sigmaUp * sigmaUp))));
    const diff = x.sub(x0);
    const derivative = diff.div(sigma);
    const dt = f32(sigmaDown - sigma);
    const { noise, owned } = stepNoise(modelOutput, options);
    const prev = lincomb([
      [1, x],
      [dt, derivative],
      [sigmaUp, noise],
    ]);
    if (owned) noise.dispose();
    release([sample], x, x0, diff, derivative);
    this.stepIndexValue = i + 1;
    return this.downcast(prev, modelOutput);
  }
}
registerSpec(EulerAncestralDiscreteScheduler.className, EulerAncestralDiscreteScheduler.configSpec);
