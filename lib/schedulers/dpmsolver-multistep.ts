/**
 * DPMSolverMultistepScheduler (DPM-Solver / DPM-Solver++, Lu et al. 2022), as diffusers 0.27.2
 * scheduling_dpmsolver_multistep.py: solver_order 1-3, algorithm_type dpmsolver++ / dpmsolver /
 * sde-dpmsolver++ / sde-dpmsolver, solver_type midpoint / heun, Karras or Lu-lambda sigmas,
 * lower_order_final, euler_at_final, final_sigmas_type, thresholding.
 */
import type { Tensor } from "../tensor.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { betaKeys, K, thresholdingKeys } from "./keys.ts";
import { f32, type TimestepSpacing, trainingSchedule } from "./math.ts";
import { alphaSigma, lambdaOf, MultistepScheduler, multistepSchedule } from "./multistep-base.ts";
import { castLike, lincomb, lincombInto, release, stepNoise, thresholdSample, upcast } from "./ops.ts";

/** The DPMSolverMultistepScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type DPMSolverMultistepConfig = ConfigOf<typeof DPMSolverMultistepScheduler.configSpec>;

export class DPMSolverMultistepScheduler extends MultistepScheduler {
  static override readonly className = "DPMSolverMultistepScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    solver_order: { default: 2, kind: { type: "int", min: 1 } },
    prediction_type: K.prediction(),
    ...thresholdingKeys(),
    algorithm_type: K.oneOf("dpmsolver++", ["dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++", "deis"]),
    solver_type: K.oneOf("midpoint", ["midpoint", "heun", "logrho", "bh1", "bh2"]),
    lower_order_final: K.bool(true),
    euler_at_final: K.bool(false),
    use_karras_sigmas: K.bool(false),
    use_lu_lambdas: K.bool(false),
    final_sigmas_type: K.oneOf("zero", ["zero", "sigma_min"]),
    lambda_min_clipped: K.num(-Infinity, false, true),
    variance_type: K.oneOf(null, ["learned", "learned_range"], true),
    timestep_spacing: K.spacing("linspace"),
    steps_offset: K.int(0),
    rescale_betas_zero_snr: K.bool(false),
  } as const satisfies ConfigSpec;

  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;

  constructor(config: DPMSolverMultistepConfig = {}) {
    super(config as Record<string, unknown>);
    const c = this.config as Record<string, unknown>;
    if (c.solver_order !== 1 && c.solver_order !== 2 && c.solver_order !== 3) throw new RangeError(`Expected solver_order 1, 2 or 3 for DPMSolverMultistepScheduler but received ${String(c.solver_order)}`);
    if (c.algorithm_type === "deis") c.algorithm_type = "dpmsolver++";
    if (["logrho", "bh1", "bh2"].includes(c.solver_type as string)) c.solver_type = "midpoint";
    if (!String(c.algorithm_type).endsWith("dpmsolver++") && c.final_sigmas_type === "zero") {
      throw new RangeError(`final_sigmas_type "zero" is not supported for algorithm_type "${String(c.algorithm_type)}": choose "sigma_min" instead`);
    }
    const { betas, alphasCumprod } = trainingSchedule(this.config, this.className, { zeroSnrEpsilon: true });
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
    this.modelOutputs = new Array(c.solver_order as number).fill(null);
  }

  protected buildSchedule(n: number): void {
    const N = this.numTrainTimesteps;
    // torch.searchsorted(flip(lambda_t), lambda_min_clipped): how many (ascending) lambdas are below it.
    const lambdas = Array.from(this.alphasCumprod, (a) => lambdaOf(f32(Math.sqrt(a)), f32(Math.sqrt(f32(1 - a))))).reverse();
    const clip = this.config.lambda_min_clipped as number;
    let clippedIdx = 0;
    while (clippedIdx < lambdas.length && lambdas[clippedIdx] < clip) clippedIdx++;
    const { timesteps, sigmas } = multistepSchedule(this, this.alphasCumprod, n, {
      lastTimestep: N - clippedIdx,
      karras: this.config.use_karras_sigmas === true,
      luLambdas: this.config.use_lu_lambdas === true,
      finalSigma: this.config.final_sigmas_type as "zero" | "sigma_min",
    });
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.numInferenceSteps = timesteps.length;
    this.dispose();
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.lowerOrderNums = 0;
  }

  /** diffusers convert_model_output: x0 (dpmsolver++) or epsilon (dpmsolver) predictions. */
  private convertModelOutput(modelOutput: Tensor, sample: Tensor): Tensor {
    const c = this.config;
    let mo = modelOutput;
    if (c.variance_type === "learned" || c.variance_type === "learned_range") mo = modelOutput.slice(1, 0, 3);
    let out: Tensor;
    if (String(c.algorithm_type).endsWith("dpmsolver++")) out = this.dataPrediction(mo, sample);
    else {
      out = this.noisePrediction(mo, sample);
      if (c.thresholding) {
        const [alpha, sigma] = alphaSigma(this.sigmas[this.stepIndexValue as number]);
        const x0 = sample.axpby(1 / alpha, -sigma / alpha, out);
        const t = thresholdSample(x0, c.dynamic_thresholding_ratio as number, c.sample_max_value as number);
        out.dispose();
        out = sample.axpby(1 / sigma, -alpha / sigma, t);
        x0.dispose();
        t.dispose();
      }
    }
    if (mo !== modelOutput) mo.dispose();
    return out;
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const c = this.config;
    const i = this.stepIndexValue as number;
    const len = this.timesteps.length;
    const lowerOrderFinal = i === len - 1 && (c.euler_at_final === true || (c.lower_order_final === true && len < 15) || c.final_sigmas_type === "zero");
    const lowerOrderSecond = i === len - 2 && c.lower_order_final === true && len < 15;
    const converted = this.convertModelOutput(modelOutput, sample);
    const order = c.solver_order as number;
    this.pushModelOutput(converted);
    // Upcast to avoid precision issues when computing prev_sample (diffusers does the same).
    const x = upcast(sample);
    const sde = String(c.algorithm_type).startsWith("sde-");
    const drawn = sde ? stepNoise(x, options) : null;
    const noise = drawn?.noise ?? null;
    // The solver keeps model outputs, never the sample: with inPlace the update goes into it.
    const into = options.inPlace === true && x === sample ? x : null;
    let prev: Tensor;
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(converted, x, noise, into);
    else if (order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(x, noise, into);
    else prev = this.thirdOrder(x, into);
    if (drawn?.owned) drawn.noise.dispose();
    if (x !== sample) x.dispose();
    prev = castLike(prev, modelOutput);
    this.advance(i);
    return prev;
  }

  /** Deterministic solvers (not sde-*) without dynamic thresholding are element by element. */
  override stepIsElementwise(_options: StepOptions = {}): boolean {
    return !String(this.config.algorithm_type).startsWith("sde-") && this.config.thresholding !== true;
  }

  /** a*sample + b*m0 (axpby's floats), into `into` (which is `sample`) when given. */
  private axpbyMaybeInPlace(sample: Tensor, a: number, b: number, m0: Tensor, into: Tensor | null): Tensor {
    if (!into) return sample.axpby(a, b, m0);
    into.axpbyInPlace(a, b, m0);
    return into;
  }

  private firstOrder(m0: Tensor, sample: Tensor, noise: Tensor | null, into: Tensor | null): Tensor {
    const i = this.stepIndexValue as number;
    const t = this.at(i + 1);
    const s = this.at(i);
    const h = t.lambda - s.lambda;
    const combine = (terms: [number, Tensor][]) => (into ? lincombInto(into, terms) : lincomb(terms));
    switch (this.config.algorithm_type) {
      case "dpmsolver++":
        return this.axpbyMaybeInPlace(sample, t.sigma / s.sigma, -(t.alpha * (Math.exp(-h) - 1.0)), m0, into);
      case "dpmsolver":
        return this.axpbyMaybeInPlace(sample, t.alpha / s.alpha, -(t.sigma * (Math.exp(h) - 1.0)), m0, into);
      case "sde-dpmsolver++":
        return combine([
          [(t.sigma / s.sigma) * Math.exp(-h), sample],
          [t.alpha * (1 - Math.exp(-2.0 * h)), m0],
          [t.sigma * Math.sqrt(1.0 - Math.exp(-2.0 * h)), noise as Tensor],
        ]);
      default:
        return combine([
          [t.alpha / s.alpha, sample],
          [-2.0 * (t.sigma * (Math.exp(h) - 1.0)), m0],
          [t.sigma * Math.sqrt(Math.exp(2 * h) - 1.0), noise as Tensor],
        ]);
    }
  }

  private secondOrder(sample: Tensor, noise: Tensor | null, into: Tensor | null): Tensor {
    const i = this.stepIndexValue as number;
    const order = this.modelOutputs.length;
    const m0 = this.modelOutputs[order - 1] as Tensor;
    const m1 = this.modelOutputs[order - 2] as Tensor;
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const s1 = this.at(i - 1);
    const h = t.lambda - s0.lambda;
    const h0 = s0.lambda - s1.lambda;
    const r0 = h0 / h;
    // D0 = m0, D1 = (m0 - m1) / r0: the update is a*sample + b*D0 + c*D1 = a*sample + (b + c/r0)*m0 - (c/r0)*m1.
    let a: number;
    let b: number;
    let d: number;
    let z = 0;
    const midpoint = this.config.solver_type === "midpoint";
    switch (this.config.algorithm_type) {
      case "dpmsolver++":
        a = t.sigma / s0.sigma;
        b = -(t.alpha * (Math.exp(-h) - 1.0));
        d = midpoint ? -0.5 * (t.alpha * (Math.exp(-h) - 1.0)) : t.alpha * ((Math.exp(-h) - 1.0) / h + 1.0);
        break;
      case "dpmsolver":
        a = t.alpha / s0.alpha;
        b = -(t.sigma * (Math.exp(h) - 1.0));
        d = midpoint ? -0.5 * (t.sigma * (Math.exp(h) - 1.0)) : -(t.sigma * ((Math.exp(h) - 1.0) / h - 1.0));
        break;
      case "sde-dpmsolver++":
        a = (t.sigma / s0.sigma) * Math.exp(-h);
        b = t.alpha * (1 - Math.exp(-2.0 * h));
        d = midpoint ? 0.5 * (t.alpha * (1 - Math.exp(-2.0 * h))) : t.alpha * ((1.0 - Math.exp(-2.0 * h)) / (-2.0 * h) + 1.0);
        z = t.sigma * Math.sqrt(1.0 - Math.exp(-2.0 * h));
        break;
      default:
        a = t.alpha / s0.alpha;
        b = -2.0 * (t.sigma * (Math.exp(h) - 1.0));
        d = midpoint ? -(t.sigma * (Math.exp(h) - 1.0)) : -2.0 * (t.sigma * ((Math.exp(h) - 1.0) / h - 1.0));
        z = t.sigma * Math.sqrt(Math.exp(2.0 * h) - 1.0);
    }
    const D1 = m0.axpby(1 / r0, -1 / r0, m1);
    const terms: [number, Tensor][] = [
      [a, sample],
      [b, m0],
      [d, D1],
    ];
    if (z !== 0 && noise) terms.push([z, noise]);
    const out = into ? lincombInto(into, terms) : lincomb(terms);
    D1.dispose();
    return out;
  }

  private thirdOrder(sample: Tensor, into: Tensor | null): Tensor {
    const i = this.stepIndexValue as number;
    const order = this.modelOutputs.length;
    const m0 = this.modelOutputs[order - 1] as Tensor;
    const m1 = this.modelOutputs[order - 2] as Tensor;
    const m2 = this.modelOutputs[order - 3] as Tensor;
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const s1 = this.at(i - 1);
    const s2 = this.at(i - 2);
    const h = t.lambda - s0.lambda;
    const h0 = s0.lambda - s1.lambda;
    const h1 = s1.lambda - s2.lambda;
    const r0 = h0 / h;
    const r1 = h1 / h;
    const D1_0 = m0.axpby(1 / r0, -1 / r0, m1);
    const D1_1 = m1.axpby(1 / r1, -1 / r1, m2);
    const diff = D1_0.sub(D1_1);
    const D1 = D1_0.axpby(1, r0 / (r0 + r1), diff);
    const D2 = diff.mul(1 / (r0 + r1));
    const combine = (terms: [number, Tensor][]) => (into ? lincombInto(into, terms) : lincomb(terms));
    let out: Tensor;
    if (this.config.algorithm_type === "dpmsolver++") {
      out = combine([
        [t.sigma / s0.sigma, sample],
        [-(t.alpha * (Math.exp(-h) - 1.0)), m0],
        [t.alpha * ((Math.exp(-h) - 1.0) / h + 1.0), D1],
        [-(t.alpha * ((Math.exp(-h) - 1.0 + h) / h ** 2 - 0.5)), D2],
      ]);
    } else if (this.config.algorithm_type === "dpmsolver") {
      out = combine([
        [t.alpha / s0.alpha, sample],
        [-(t.sigma * (Math.exp(h) - 1.0)), m0],
        [-(t.sigma * ((Math.exp(h) - 1.0) / h - 1.0)), D1],
        [-(t.sigma * ((Math.exp(h) - 1.0 - h) / h ** 2 - 0.5)), D2],
      ]);
    } else {
      throw new RangeError(`solver_order 3 is not implemented for algorithm_type "${String(this.config.algorithm_type)}" (diffusers neither): use solver_order 2`);
    }
    release([], D1_0, D1_1, diff, D1, D2);
    return out;
  }
}
registerSpec(DPMSolverMultistepScheduler.className, DPMSolverMultistepScheduler.configSpec);
