/**
 * UniPCMultistepScheduler (UniPC: unified predictor-corrector, Zhao et al. 2023), as diffusers
 * 0.27.2 scheduling_unipc_multistep.py: B(h) variants bh1 / bh2, predict_x0 or noise prediction,
 * solver_order, lower_order_final, disable_corrector, Karras sigmas, thresholding.
 */
import type { Tensor } from "../tensor.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, Scheduler, type StepOptions } from "./base.ts";
import { betaKeys, K, thresholdingKeys } from "./keys.ts";
import { type TimestepSpacing, trainingSchedule } from "./math.ts";
import { MultistepScheduler, multistepSchedule } from "./multistep-base.ts";
import { lincomb, release } from "./ops.ts";

/** Solves the small dense system A x = b (Gaussian elimination with partial pivoting). */
export function solveLinear(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row.slice(0, n), b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** The UniPCMultistepScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type UniPCMultistepConfig = ConfigOf<typeof UniPCMultistepScheduler.configSpec>;

export class UniPCMultistepScheduler extends MultistepScheduler {
  static override readonly className = "UniPCMultistepScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    solver_order: K.int(2, 1),
    prediction_type: K.prediction(),
    ...thresholdingKeys(),
    predict_x0: K.bool(true),
    solver_type: K.oneOf("bh2", ["bh1", "bh2", "midpoint", "heun", "logrho"]),
    lower_order_final: K.bool(true),
    disable_corrector: K.intList([]),
    solver_p: K.scheduler(),
    use_karras_sigmas: K.bool(false),
    timestep_spacing: K.spacing("linspace"),
    steps_offset: K.int(0),
  } as const satisfies ConfigSpec;

  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  private lastSample: Tensor | null = null;
  private thisOrder = 1;

  constructor(config: UniPCMultistepConfig = {}) {
    super(config as Record<string, unknown>);
    const c = this.config as Record<string, unknown>;
    if (["midpoint", "heun", "logrho"].includes(c.solver_type as string)) c.solver_type = "bh2";
    const { betas, alphasCumprod } = trainingSchedule(this.config, this.className);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod;
  }

  protected buildSchedule(n: number): void {
    const { timesteps, sigmas } = multistepSchedule(this, this.alphasCumprod, n, {
      lastTimestep: this.numTrainTimesteps,
      karras: this.config.use_karras_sigmas === true,
      // diffusers 0.27.2 UniPC: Karras sigmas repeat their last value, otherwise the last is sigma(t=0).
      finalSigma: "sigma_min_or_repeat",
    });
    this.timesteps = timesteps;
    this.sigmas = sigmas;
    this.numInferenceSteps = timesteps.length;
    this.solverP?.setTimesteps(this.numInferenceSteps);
    this.dispose();
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.lowerOrderNums = 0;
    this.thisOrder = 1;
  }

  /** Frees the tensors kept between steps (model outputs, last sample). */
  override dispose(): void {
    super.dispose();
    this.solverP?.dispose();
    if (this.lastSample && !this.lastSample.disposed) this.lastSample.dispose();
    this.lastSample = null;
  }

  /** The external predictor (diffusers solver_p): replaces the UniP predictor; the UniC corrector still runs. */
  private get solverP(): Scheduler | null {
    return (this.config.solver_p as Scheduler | null) ?? null;
  }

  private convertModelOutput(modelOutput: Tensor, sample: Tensor): Tensor {
    return this.config.predict_x0 ? this.dataPrediction(modelOutput, sample) : this.noisePrediction(modelOutput, sample);
  }

  /** R (powers of rks) and b of the UniPC linear system, plus h_phi_1 and B(h). */
  private system(h: number, rks: number[], order: number): { R: number[][]; b: number[]; hPhi1: number; Bh: number } {
    const hh = this.config.predict_x0 ? -h : h;
    const hPhi1 = Math.expm1(hh);
    let hPhiK = hPhi1 / hh - 1;
    let factorial = 1;
    const Bh = this.config.solver_type === "bh1" ? hh : Math.expm1(hh);
    const R: number[][] = [];
    const b: number[] = [];
    for (let i = 1; i <= order; i++) {
      R.push(rks.map((r) => r ** (i - 1)));
      b.push((hPhiK * factorial) / Bh);
      factorial *= i + 1;
      hPhiK = hPhiK / hh - 1 / factorial;
    }
    return { R, b, hPhi1, Bh };
  }

  /** Base of both updates: (sigma_t/sigma_s0) x - alpha_t h_phi_1 m0 (or the noise-prediction form). */
  private baseCoefs(t: { alpha: number; sigma: number }, s0: { alpha: number; sigma: number }, hPhi1: number, Bh: number): { cx: number; cm0: number; cres: number } {
    if (this.config.predict_x0) return { cx: t.sigma / s0.sigma, cm0: -t.alpha * hPhi1, cres: -t.alpha * Bh };
    return { cx: t.alpha / s0.alpha, cm0: -t.sigma * hPhi1, cres: -t.sigma * Bh };
  }

  /**
   * The ratios r_k = (lambda_{s_k} - lambda_{s0}) / h of the `order - 1` earlier steps
   * s_k = s0Index - k (then 1.0) and D1_k = (m_k - m0) / r_k of their model outputs.
   */
  private differences(m0: Tensor, s0Index: number, h: number, order: number): { rks: number[]; D1s: Tensor[] } {
    const L = this.modelOutputs.length;
    const s0 = this.at(s0Index);
    const rks: number[] = [];
    const D1s: Tensor[] = [];
    for (let k = 1; k < order; k++) {
      const sk = this.at(s0Index - k);
      const mk = this.modelOutputs[L - (k + 1)] as Tensor;
      const rk = (sk.lambda - s0.lambda) / h;
      rks.push(rk);
      D1s.push(mk.axpby(1 / rk, -1 / rk, m0));
    }
    rks.push(1.0);
    return { rks, D1s };
  }

  private predictor(sample: Tensor, order: number): Tensor {
    const i = this.stepIndexValue as number;
    const L = this.modelOutputs.length;
    const m0 = this.modelOutputs[L - 1] as Tensor;
    const t = this.at(i + 1);
    const s0 = this.at(i);
    const h = t.lambda - s0.lambda;
    const { rks, D1s } = this.differences(m0, i, h, order);
    const { R, b, hPhi1, Bh } = this.system(h, rks, order);
    let rhosP: number[] = [];
    if (D1s.length > 0) rhosP = order === 2 ? [0.5] : solveLinear(R.slice(0, -1).map((r) => r.slice(0, -1)), b.slice(0, -1));
    const { cx, cm0, cres } = this.baseCoefs(t, s0, hPhi1, Bh);
    const out = lincomb([
      [cx, sample],
      [cm0, m0],
      ...D1s.map((d, k) => [cres * rhosP[k], d] as [number, Tensor]),
    ]);
    release([], ...D1s);
    return out;
  }

  private corrector(modelT: Tensor, lastSample: Tensor, order: number): Tensor {
    const i = this.stepIndexValue as number;
    const L = this.modelOutputs.length;
    const m0 = this.modelOutputs[L - 1] as Tensor;
    const t = this.at(i);
    const s0 = this.at(i - 1);
    const h = t.lambda - s0.lambda;
    const { rks, D1s } = this.differences(m0, i - 1, h, order);
    const { R, b, hPhi1, Bh } = this.system(h, rks, order);
    const rhosC = order === 1 ? [0.5] : solveLinear(R, b);
    const { cx, cm0, cres } = this.baseCoefs(t, s0, hPhi1, Bh);
    const D1t = modelT.sub(m0);
    const out = lincomb([
      [cx, lastSample],
      [cm0, m0],
      ...D1s.map((d, k) => [cres * rhosC[k], d] as [number, Tensor]),
      [cres * rhosC[rhosC.length - 1], D1t],
    ]);
    release([], ...D1s, D1t);
    return out;
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, _options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.stepIndexValue === null) this.initStepIndex(timestep);
    const c = this.config;
    const i = this.stepIndexValue as number;
    const disabled = c.disable_corrector as number[];
    const useCorrector = i > 0 && !disabled.includes(i - 1) && this.lastSample !== null;
    const converted = this.convertModelOutput(modelOutput, sample);
    let x = sample;
    if (useCorrector) x = this.corrector(converted, this.lastSample as Tensor, this.thisOrder);
    const order = c.solver_order as number;
    this.pushModelOutput(converted);
    let thisOrder = c.lower_order_final ? Math.min(order, this.timesteps.length - i) : order;
    thisOrder = Math.min(thisOrder, this.lowerOrderNums + 1);
    this.thisOrder = thisOrder;
    // keep our own handle of the (corrected) sample: the caller may dispose `sample`.
    if (this.lastSample && !this.lastSample.disposed) this.lastSample.dispose();
    this.lastSample = x === sample ? sample.clone() : x;
    // diffusers multistep_uni_p_bh_update: with solver_p, x_t = solver_p.step(model_output, t, x).
    const prev = this.solverP ? this.solverP.step(modelOutput, timestep, x) : this.predictor(x, thisOrder);
    this.advance(i);
    return prev;
  }
}
registerSpec(UniPCMultistepScheduler.className, UniPCMultistepScheduler.configSpec);
