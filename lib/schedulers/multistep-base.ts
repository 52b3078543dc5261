/**
 * Shared parts of the multistep solvers DPM-Solver(++) and UniPC (diffusers 0.27.2): the sigma
 * schedule, alpha / sigma / lambda at a step, the diffusers convert_model_output forms, the
 * window of the last `solver_order` converted model outputs, and index / noise lookups.
 */
import { TorchvidError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { Scheduler } from "./base.ts";
import { f32, interpIndex, karrasSigmas, npArange, npLinspace, roundHalfEven, sigmasOf, sigmaToT, spacedTimesteps, type TimestepSpacing } from "./math.ts";
import { thresholdSample } from "./ops.ts";

/** alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t (float32, as torch computes them). */
export function alphaSigma(sigma: number): [number, number] {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return [alpha, f32(sigma * alpha)];
}

/** lambda = log(alpha_t) - log(sigma_t) (float32). */
export function lambdaOf(alpha: number, sigma: number): number {
  return f32(f32(Math.log(alpha)) - f32(Math.log(sigma)));
}

/**
 * The multistep sigma schedule shared by DPM-Solver and UniPC: n+1 spaced timesteps without the
 * last, or Karras / Lu-lambda sigmas mapped back to (rounded) timesteps.
 */
export function multistepSchedule(
  s: Scheduler,
  alphasCumprod: Float32Array,
  n: number,
  opts: { lastTimestep: number; karras: boolean; luLambdas?: boolean; finalSigma: "zero" | "sigma_min" | "repeat_last" | "sigma_min_or_repeat" },
): { timesteps: number[]; sigmas: number[] } {
  const N = s.config.num_train_timesteps as number;
  const spacing = s.config.timestep_spacing as TimestepSpacing;
  const offset = s.config.steps_offset as number;
  let timesteps: number[];
  const last = opts.lastTimestep;
  if (spacing === "linspace") timesteps = npLinspace(0, last - 1, n + 1).map(roundHalfEven).reverse().slice(0, -1);
  else if (spacing === "leading") {
    const ratio = Math.floor(last / (n + 1));
    timesteps = [];
    for (let i = n; i >= 1; i--) timesteps.push(roundHalfEven(i * ratio) + offset);
  } else if (spacing === "trailing") timesteps = npArange(last, 0, -(N / n)).map((t) => roundHalfEven(t) - 1);
  else timesteps = spacedTimesteps(spacing, N, n, offset, s.className);
  const trainSigmas = sigmasOf(alphasCumprod);
  const logSigmas = trainSigmas.map((v) => f32(Math.log(v)));
  let sigmas: number[];
  if (opts.karras) {
    const flipped = Array.from(trainSigmas).reverse();
    const ks = karrasSigmas(flipped[flipped.length - 1], flipped[0], n);
    timesteps = ks.map((sg) => roundHalfEven(sigmaToT(sg, logSigmas)));
    sigmas = ks;
  } else if (opts.luLambdas) {
    const lambdas = Array.from(logSigmas).reverse();
    const lmin = lambdas[lambdas.length - 1];
    const lmax = lambdas[0];
    const ls = npLinspace(0, 1, n).map((r) => lmax + r * (lmin - lmax));
    const sg = ls.map(Math.exp);
    timesteps = sg.map((v) => roundHalfEven(sigmaToT(v, logSigmas)));
    sigmas = sg;
  } else {
    sigmas = timesteps.map((t) => interpIndex(t, trainSigmas));
  }
  let sigmaLast: number;
  if (opts.finalSigma === "repeat_last" || (opts.finalSigma === "sigma_min_or_repeat" && (opts.karras || opts.luLambdas))) sigmaLast = sigmas[sigmas.length - 1];
  else if (opts.finalSigma === "zero") sigmaLast = 0;
  else sigmaLast = f32(Math.sqrt(f32(f32(1 - alphasCumprod[0]) / alphasCumprod[0])));
  sigmas = [...sigmas, sigmaLast].map(f32);
  return { timesteps, sigmas };
}

export abstract class MultistepScheduler extends Scheduler {
  /** sigma of each entry of `timesteps`, plus the final one. */
  sigmas: number[] = [];
  /** The last `solver_order` converted model outputs, oldest first (null until filled). */
  protected modelOutputs: (Tensor | null)[] = [];
  protected lowerOrderNums = 0;

  /** Frees the model outputs kept for the multistep update. */
  override dispose(): void {
    for (const t of this.modelOutputs) if (t && !t.disposed) t.dispose();
    this.modelOutputs = this.modelOutputs.map(() => null);
  }

  /** diffusers index_for_timestep of the multistep solvers: the last step where `t` is not in the schedule. */
  protected override indexForTimestep(t: number, schedule: readonly number[] = this.timesteps): number {
    const idx: number[] = [];
    schedule.forEach((v, i) => {
      if (v === t) idx.push(i);
    });
    if (idx.length === 0) return this.timesteps.length - 1;
    return idx.length > 1 ? idx[1] : idx[0];
  }

  /** alpha, sigma and lambda at step k of the schedule. */
  protected at(k: number): { alpha: number; sigma: number; lambda: number } {
    const [alpha, sigma] = alphaSigma(this.sigmas[k]);
    return { alpha, sigma, lambda: lambdaOf(alpha, sigma) };
  }

  /** The data (x0) prediction of convert_model_output at the current step, thresholded where configured. */
  protected dataPrediction(modelOutput: Tensor, sample: Tensor): Tensor {
    const c = this.config;
    const [alpha, sigma] = alphaSigma(this.sigmas[this.stepIndexValue as number]);
    const pt = c.prediction_type;
    let x0: Tensor;
    if (pt === "epsilon") x0 = sample.axpby(1 / alpha, -sigma / alpha, modelOutput);
    else if (pt === "sample") x0 = modelOutput.clone();
    else x0 = sample.axpby(alpha, -sigma, modelOutput);
    if (c.thresholding) {
      const t = thresholdSample(x0, c.dynamic_thresholding_ratio as number, c.sample_max_value as number);
      x0.dispose();
      x0 = t;
    }
    return x0;
  }

  /** The noise (epsilon) prediction of convert_model_output at the current step (not thresholded). */
  protected noisePrediction(modelOutput: Tensor, sample: Tensor): Tensor {
    const [alpha, sigma] = alphaSigma(this.sigmas[this.stepIndexValue as number]);
    const pt = this.config.prediction_type;
    if (pt === "epsilon") return modelOutput.clone();
    if (pt === "sample") return sample.axpby(1 / sigma, -alpha / sigma, modelOutput);
    return modelOutput.axpby(alpha, sigma, sample);
  }

  /** Shifts the window of model outputs by one, freeing the one that leaves it. */
  protected pushModelOutput(converted: Tensor): void {
    const order = this.config.solver_order as number;
    const dropped = this.modelOutputs[0];
    for (let k = 0; k < order - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1];
    this.modelOutputs[order - 1] = converted;
    if (dropped && !this.modelOutputs.includes(dropped)) dropped.dispose();
  }

  /** End of step i: one more lower-order step counted (up to solver_order), the index moves on. */
  protected advance(i: number): void {
    if (this.lowerOrderNums < (this.config.solver_order as number)) this.lowerOrderNums++;
    this.stepIndexValue = i + 1;
  }

  protected noiseCoefficients(t: number): [number, number] {
    if (this.numInferenceSteps === null) throw new TorchvidError("ERR_TORCHVID_STATE", `${this.className}: call setTimesteps before addNoise`);
    // diffusers: no begin index -> look t up; else the current step (noise added mid-run, inpainting) or the begin index.
    const idx = this.beginIndexValue === null ? this.indexForTimestep(t) : (this.stepIndexValue ?? this.beginIndexValue);
    return alphaSigma(this.sigmas[idx]);
  }
}
