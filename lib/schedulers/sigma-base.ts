/**
 * Shared parts of the Karras-style (sigma-parameterised) schedulers: Euler, Euler ancestral, LMS,
 * Heun. The sample lives at noise level sigma (x = x0 + sigma * eps), the model input is scaled by
 * 1 / sqrt(sigma^2 + 1), and timesteps are (possibly fractional) training timesteps.
 */
import type { Tensor } from "../tensor.ts";
import { Scheduler } from "./base.ts";
import { f32, interpIndex, karrasSigmas, npArange, npLinspace, roundHalfEven, sigmasOf, sigmaToT, type TimestepSpacing, trainingSchedule } from "./math.ts";
import { castLike, expectTensor, upcast } from "./ops.ts";

export abstract class SigmaScheduler extends Scheduler {
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /** sigma of each step, then 0. */
  sigmas: number[];

  constructor(config: Record<string, unknown>, options: { zeroSnrEpsilon?: boolean } = {}) {
    super(config);
    const { betas, alphasCumprod } = trainingSchedule(this.config, this.className, options);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    const train = Array.from(sigmasOf(alphasCumprod)).reverse();
    this.sigmas = [...train, 0];
    const N = this.numTrainTimesteps;
    this.timesteps = npLinspace(0, N - 1, N).reverse().map(f32);
  }

  override get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    const spacing = this.config.timestep_spacing;
    if (spacing === "linspace" || spacing === "trailing") return max;
    return f32(Math.sqrt(f32(f32(max * max) + 1)));
  }

  /**
   * Spaced timesteps (float) and their interpolated sigmas (float64, before the float32 cast).
   * `f32Timesteps`: numpy made the grid float32 before interpolating (Euler, Heun) or not (LMS).
   */
  protected spacedSigmas(n: number, f32Timesteps: boolean): { timesteps: number[]; sigmas: number[]; logSigmas: Float32Array } {
    const N = this.numTrainTimesteps;
    const spacing = this.config.timestep_spacing as TimestepSpacing;
    const offset = this.config.steps_offset as number;
    let ts: number[];
    if (spacing === "linspace") ts = npLinspace(0, N - 1, n).reverse();
    else if (spacing === "leading") {
      const ratio = Math.floor(N / n);
      ts = [];
      for (let i = n - 1; i >= 0; i--) ts.push(f32(roundHalfEven(i * ratio)) + offset);
    } else if (spacing === "trailing") ts = npArange(N, 0, -(N / n)).map((v) => f32(roundHalfEven(v)) - 1);
    else throw new RangeError(`timestep_spacing "${String(spacing)}" is not supported for ${this.className}: use "linspace", "leading" or "trailing"`);
    if (f32Timesteps) ts = ts.map(f32);
    const train = sigmasOf(this.alphasCumprod);
    const logSigmas = train.map((v) => f32(Math.log(v)));
    const sigmas = ts.map((t) => interpIndex(t, train));
    return { timesteps: ts, sigmas, logSigmas };
  }

  /** Karras sigmas from the spaced ones (or config sigma_min / sigma_max) and their timesteps. */
  protected karras(sigmas: number[], logSigmas: Float32Array, n: number): { timesteps: number[]; sigmas: number[] } {
    const min = (this.config.sigma_min as number | null | undefined) ?? sigmas[sigmas.length - 1];
    const max = (this.config.sigma_max as number | null | undefined) ?? sigmas[0];
    const ks = karrasSigmas(f32(min), f32(max), n);
    return { sigmas: ks, timesteps: ks.map((s) => sigmaToT(s, logSigmas)) };
  }

  protected currentSigma(t: number): number {
    if (this.stepIndexValue === null) this.initStepIndex(t);
    return this.sigmas[this.stepIndexValue as number];
  }

  /** sample / sqrt(sigma^2 + 1). */
  override scaleModelInput(sample: Tensor, timestep: number): Tensor {
    expectTensor(sample, "sample");
    this.requireSchedule();
    const sigma = this.currentSigma(timestep);
    return sample.div(f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  }

  protected noiseCoefficients(t: number): [number, number] {
    this.requireSchedule();
    // diffusers: no begin index -> look t up; else the current step (noise added mid-run, inpainting) or the begin index.
    const idx = this.beginIndexValue === null ? this.indexForTimestep(t) : (this.stepIndexValue ?? this.beginIndexValue);
    return [1, this.sigmas[idx]];
  }

  /** Upcasts half-precision samples as diffusers does (sample.to(float32)) before stepping. */
  protected upcast(sample: Tensor): Tensor {
    return upcast(sample);
  }

  /** The result back in the model output's dtype. */
  protected downcast(result: Tensor, modelOutput: Tensor): Tensor {
    return castLike(result, modelOutput);
  }
}
