/**
 * LMSDiscreteScheduler (linear multistep on Karras sigmas, k-diffusion's sample_lms), as diffusers
 * 0.27.2. diffusers integrates the Lagrange basis polynomial with scipy quad; it is a polynomial of
 * degree < 4, so here it is integrated exactly.
 */
import type { Tensor } from "../tensor.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { sigmaPredX0 } from "./euler.ts";
import { betaKeys, K } from "./keys.ts";
import { f32, type TimestepSpacing } from "./math.ts";
import { lincomb, release } from "./ops.ts";
import { SigmaScheduler } from "./sigma-base.ts";

/** The LMSDiscreteScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type LMSDiscreteConfig = ConfigOf<typeof LMSDiscreteScheduler.configSpec>;

/** Integral over [a, b] of prod_k (tau - r_k) * scale: expands the polynomial and integrates it. */
function integratePolynomial(roots: number[], scale: number, a: number, b: number): number {
  let coeffs = [1]; // coeffs[i] multiplies tau^i
  for (const r of roots) {
    const next = new Array<number>(coeffs.length + 1).fill(0);
    for (let i = 0; i < coeffs.length; i++) {
      next[i + 1] += coeffs[i];
      next[i] -= r * coeffs[i];
    }
    coeffs = next;
  }
  let total = 0;
  for (let i = 0; i < coeffs.length; i++) total += (coeffs[i] * (b ** (i + 1) - a ** (i + 1))) / (i + 1);
  return total * scale;
}

export class LMSDiscreteScheduler extends SigmaScheduler {
  static override readonly className = "LMSDiscreteScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    use_karras_sigmas: K.bool(false),
    prediction_type: K.prediction(),
    timestep_spacing: K.spacing("linspace"),
    steps_offset: K.int(0),
  } as const satisfies ConfigSpec;

  private derivatives: Tensor[] = [];

  constructor(config: LMSDiscreteConfig = {}) {
    super(config as Record<string, unknown>);
  }

  protected buildSchedule(n: number): void {
    let { timesteps, sigmas, logSigmas } = this.spacedSigmas(n, true);
    if (this.config.use_karras_sigmas) ({ timesteps, sigmas } = this.karras(sigmas, logSigmas, n));
    this.sigmas = [...sigmas.map(f32), 0];
    this.timesteps = timesteps.map(f32);
    this.numInferenceSteps = n;
    this.dispose();
  }

  /** Frees the derivatives kept between steps. */
  override dispose(): void {
    for (const d of this.derivatives) if (!d.disposed) d.dispose();
    this.derivatives = [];
  }

  /** The linear multistep coefficient of derivative `current` (diffusers get_lms_coefficient). */
  lmsCoefficient(order: number, t: number, current: number): number {
    const s = this.sigmas;
    const roots: number[] = [];
    let scale = 1;
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      roots.push(s[t - k]);
      scale /= s[t - current] - s[t - k];
    }
    return integratePolynomial(roots, scale, s[t], s[t + 1]);
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions & { order?: number } = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const i = this.stepIndexValue as number;
    const maxOrder = options.order ?? 4;
    const sigma = this.sigmas[i];
    const x0 = sigmaPredX0(this.config.prediction_type, modelOutput, sample, sigma, this.className);
    const diff = sample.sub(x0);
    const derivative = diff.div(sigma);
    release([], x0, diff);
    this.derivatives.push(derivative);
    while (this.derivatives.length > maxOrder) (this.derivatives.shift() as Tensor).dispose();
    const order = Math.min(i + 1, maxOrder);
    const coeffs = Array.from({ length: order }, (_, c) => this.lmsCoefficient(order, i, c));
    const rev = [...this.derivatives].reverse();
    const prev = lincomb([[1, sample], ...coeffs.map((c, k) => [c, rev[k]] as [number, Tensor])]);
    this.stepIndexValue = i + 1;
    return prev;
  }
}
registerSpec(LMSDiscreteScheduler.className, LMSDiscreteScheduler.configSpec);
