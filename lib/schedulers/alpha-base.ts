/**
 * Shared parts of the schedulers that work on alphas_cumprod at integer training timesteps:
 * DDIM, DDPM, PNDM, LCM. They hold the training schedule, start from the full descending grid,
 * add noise with sqrt(alpha_prod_t) / sqrt(1 - alpha_prod_t), and read alpha_prod at the current
 * and the previous timestep (the final alpha where the previous one is before 0).
 */
import { Scheduler, type SchedulerClass } from "./base.ts";
import { f32, roundHalfEven, spacedTimesteps, type TimestepSpacing, trainingSchedule } from "./math.ts";

export abstract class AlphaScheduler extends Scheduler {
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /**
   * alpha_prod of the timestep before 0: 1 with set_alpha_to_one (or where the scheduler has no
   * such key: DDPM, whose diffusers `self.one` is 1), else alphas_cumprod[0].
   */
  readonly finalAlphaCumprod: number;

  constructor(config: Record<string, unknown>) {
    super(config);
    const { betas, alphasCumprod } = trainingSchedule(this.config, this.className);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    const hasSetAlphaToOne = "set_alpha_to_one" in (this.constructor as SchedulerClass).configSpec;
    this.finalAlphaCumprod = hasSetAlphaToOne && !this.config.set_alpha_to_one ? alphasCumprod[0] : 1.0;
    this.timesteps = Array.from({ length: this.numTrainTimesteps }, (_, i) => this.numTrainTimesteps - 1 - i);
  }

  /** timestep_spacing / steps_offset grid of n integer timesteps (DDIM, DDPM). */
  protected buildSchedule(n: number): void {
    const spacing = this.config.timestep_spacing as TimestepSpacing;
    const raw = spacedTimesteps(spacing, this.numTrainTimesteps, n, this.config.steps_offset as number, this.className);
    this.timesteps = spacing === "linspace" ? raw.map(roundHalfEven) : raw;
    this.numInferenceSteps = n;
  }

  /** alpha_prod_t; throws for a timestep outside the training schedule. */
  protected alphaProd(t: number): number {
    const a = this.alphasCumprod[t];
    if (a === undefined) throw new RangeError(`timestep ${t} is outside 0..${this.numTrainTimesteps - 1}`);
    return a;
  }

  /** alpha_prod of the previous timestep: the final alpha where it is before 0. */
  protected alphaProdPrev(prevT: number): number {
    return prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
  }

  protected noiseCoefficients(t: number): [number, number] {
    const a = this.alphasCumprod[t];
    if (a === undefined || !Number.isInteger(t)) throw new RangeError(`timestep ${t} is not an integer in 0..${this.numTrainTimesteps - 1}`);
    return [f32(Math.sqrt(a)), f32(Math.sqrt(f32(1 - a)))];
  }
}
