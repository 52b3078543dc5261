/**
 * HeunDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn), as diffusers 0.27.2:
 * every schedule entry but the first runs twice (an Euler step, then the Heun correction), so
 * `order` is 2 and `timesteps` repeats each interior timestep.
 */
import type { Tensor } from "../tensor.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { sigmaPredX0 } from "./euler.ts";
import { betaKeys, K } from "./keys.ts";
import { f32, type TimestepSpacing } from "./math.ts";
import { release } from "./ops.ts";
import { SigmaScheduler } from "./sigma-base.ts";

/** The HeunDiscreteScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type HeunDiscreteConfig = ConfigOf<typeof HeunDiscreteScheduler.configSpec>;

export class HeunDiscreteScheduler extends SigmaScheduler {
  static override readonly className = "HeunDiscreteScheduler";
  static override readonly configSpec = {
    ...betaKeys({ beta_start: 0.00085, beta_end: 0.012, schedules: ["linear", "scaled_linear", "squaredcos_cap_v2", "exp"] }),
    prediction_type: K.prediction(),
    use_karras_sigmas: K.bool(false),
    clip_sample: K.bool(false),
    clip_sample_range: K.num(1.0),
    timestep_spacing: K.spacing("linspace"),
    steps_offset: K.int(0),
  } as const satisfies ConfigSpec;

  private prevDerivative: Tensor | null = null;
  private dt: number | null = null;
  private savedSample: Tensor | null = null;

  constructor(config: HeunDiscreteConfig = {}) {
    super(config as Record<string, unknown>);
    this.buildSchedule(this.numTrainTimesteps);
    this.numInferenceSteps = null;
  }

  override get order(): number {
    return 2;
  }

  protected buildSchedule(n: number): void {
    let { timesteps, sigmas, logSigmas } = this.spacedSigmas(n, true);
    if (this.config.use_karras_sigmas) ({ timesteps, sigmas } = this.karras(sigmas, logSigmas, n));
    const s = [...sigmas.map(f32), 0];
    this.sigmas = [s[0], ...s.slice(1, -1).flatMap((v) => [v, v]), s[s.length - 1]];
    // diffusers keeps the float64 numpy timesteps of the Karras path (torch.from_numpy), float32 otherwise.
    const t = this.config.use_karras_sigmas ? timesteps : timesteps.map(f32);
    this.timesteps = [t[0], ...t.slice(1).flatMap((v) => [v, v])];
    this.numInferenceSteps = n;
    this.dispose();
  }

  /** Frees the tensors kept between the two halves of a Heun step. */
  override dispose(): void {
    if (this.prevDerivative && !this.prevDerivative.disposed) this.prevDerivative.dispose();
    if (this.savedSample && !this.savedSample.disposed) this.savedSample.dispose();
    this.prevDerivative = null;
    this.savedSample = null;
    this.dt = null;
  }

  /** True when the next step is the first (Euler) half. */
  get stateInFirstOrder(): boolean {
    return this.dt === null;
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, _options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const i = this.stepIndexValue as number;
    const first = this.stateInFirstOrder;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sigmaHat = sigma; // gamma = 0
    const sigmaInput = first ? sigmaHat : sigmaNext;
    let x0 = sigmaPredX0(this.config.prediction_type, modelOutput, sample, sigmaInput, this.className);
    if (this.config.clip_sample) {
      const r = this.config.clip_sample_range as number;
      const c = x0.clamp(-r, r);
      x0.dispose();
      x0 = c;
    }
    let prev: Tensor;
    if (first) {
      const diff = sample.sub(x0);
      const derivative = diff.div(sigmaHat);
      const dt = f32(sigmaNext - sigmaHat);
      prev = sample.axpby(1, dt, derivative);
      this.prevDerivative = derivative;
      this.dt = dt;
      this.savedSample = sample.clone();
      diff.dispose();
    } else {
      const diff = sample.sub(x0);
      const d2 = diff.div(sigmaNext);
      const derivative = (this.prevDerivative as Tensor).axpby(0.5, 0.5, d2);
      prev = (this.savedSample as Tensor).axpby(1, this.dt as number, derivative);
      release([], diff, d2, derivative);
      this.dispose();
    }
    x0.dispose();
    this.stepIndexValue = i + 1;
    return prev;
  }
}
registerSpec(HeunDiscreteScheduler.className, HeunDiscreteScheduler.configSpec);
