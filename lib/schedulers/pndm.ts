/**
 * PNDMScheduler (pseudo numerical methods, Liu et al. 2022), as diffusers 0.27.2
 * scheduling_pndm.py: Runge-Kutta warm-up steps (PRK) then linear multistep (PLMS), or PLMS only
 * with skip_prk_steps.
 */
import { TorchvidError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { AlphaScheduler } from "./alpha-base.ts";
import { type ConfigOf, type ConfigSpec, registerSpec, type StepOptions } from "./base.ts";
import { betaKeys, K } from "./keys.ts";
import { f32, npArange, npLinspace, roundHalfEven, type TimestepSpacing } from "./math.ts";
import { lincomb } from "./ops.ts";

/** The PNDMScheduler constructor config (diffusers __init__ keys), derived from its configSpec. */
export type PNDMConfig = ConfigOf<typeof PNDMScheduler.configSpec>;

export class PNDMScheduler extends AlphaScheduler {
  static override readonly className = "PNDMScheduler";
  static override readonly configSpec = {
    ...betaKeys(),
    skip_prk_steps: K.bool(false),
    set_alpha_to_one: K.bool(false),
    prediction_type: K.oneOf("epsilon", ["epsilon", "v_prediction"]),
    timestep_spacing: K.spacing("leading"),
    steps_offset: K.int(0),
  } as const satisfies ConfigSpec;

  private readonly pndmOrder = 4;
  prkTimesteps: number[] = [];
  plmsTimesteps: number[] = [];
  private ets: Tensor[] = [];
  private counter = 0;
  private curModelOutput: Tensor | null = null;
  private curSample: Tensor | null = null;

  constructor(config: PNDMConfig = {}) {
    super(config as Record<string, unknown>);
  }

  protected override get supportsBeginIndex(): boolean {
    return false;
  }

  override setTimesteps(numInferenceSteps: number, options = {}): void {
    const n = this.checkNumSteps(numInferenceSteps);
    if (!this.config.skip_prk_steps && n < this.pndmOrder) {
      throw new RangeError(
        `PNDMScheduler with PRK steps needs numInferenceSteps >= ${this.pndmOrder} but received ${n} (diffusers 0.27.2 fails there too): use skip_prk_steps: true or more steps`,
      );
    }
    super.setTimesteps(n, options);
  }

  protected override buildSchedule(n: number): void {
    const N = this.numTrainTimesteps;
    const spacing = this.config.timestep_spacing as TimestepSpacing;
    let ts: number[];
    if (spacing === "linspace") ts = npLinspace(0, N - 1, n).map(roundHalfEven);
    else if (spacing === "leading") {
      const ratio = Math.floor(N / n);
      ts = Array.from({ length: n }, (_, i) => roundHalfEven(i * ratio) + (this.config.steps_offset as number));
    } else if (spacing === "trailing") ts = npArange(N, 0, -(N / n)).map(roundHalfEven).reverse().map((t) => t - 1);
    else throw new RangeError(`timestep_spacing "${String(spacing)}" is not supported for PNDMScheduler`);
    if (this.config.skip_prk_steps) {
      this.prkTimesteps = [];
      this.plmsTimesteps = [...ts.slice(0, -1), ...ts.slice(-2, -1), ...ts.slice(-1)].reverse();
    } else {
      const half = Math.floor(Math.floor(N / n) / 2);
      const last = ts.slice(-this.pndmOrder);
      const prk: number[] = [];
      for (const t of last) prk.push(t, t);
      for (let k = 0; k < prk.length; k++) prk[k] += k % 2 === 0 ? 0 : half;
      const rep: number[] = [];
      for (const t of prk.slice(0, -1)) rep.push(t, t);
      this.prkTimesteps = rep.slice(1, -1).reverse();
      this.plmsTimesteps = ts.slice(0, -3).reverse();
    }
    this.timesteps = [...this.prkTimesteps, ...this.plmsTimesteps];
    this.numInferenceSteps = n;
    this.dispose();
    this.counter = 0;
  }

  /** Frees the model outputs kept between steps. */
  override dispose(): void {
    for (const t of this.ets) if (!t.disposed) t.dispose();
    this.ets = [];
    if (this.curModelOutput && !this.curModelOutput.disposed) this.curModelOutput.dispose();
    this.curModelOutput = null;
    if (this.curSample && !this.curSample.disposed) this.curSample.dispose();
    this.curSample = null;
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, _options: StepOptions = {}): Tensor {
    this.checkStepArgs(modelOutput, timestep, sample);
    if (this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps) return this.stepPrk(modelOutput, timestep, sample);
    return this.stepPlms(modelOutput, timestep, sample);
  }

  private stepPrk(modelOutput: Tensor, timestep: number, sample: Tensor): Tensor {
    const n = this.numInferenceSteps as number;
    const N = this.numTrainTimesteps;
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(Math.floor(N / n) / 2);
    const prevT = timestep - diffToPrev;
    const t = this.prkTimesteps[Math.floor(this.counter / 4) * 4];
    let mo = modelOutput;
    let ownMo = false;
    const phase = this.counter % 4;
    const acc = (c: number): void => {
      const next = this.curModelOutput === null ? modelOutput.mul(c) : this.curModelOutput.axpby(1, c, modelOutput);
      if (this.curModelOutput) this.curModelOutput.dispose();
      this.curModelOutput = next;
    };
    if (phase === 0) {
      acc(1 / 6);
      this.ets.push(modelOutput.clone());
      if (this.curSample) this.curSample.dispose();
      this.curSample = sample.clone();
    } else if (phase === 1 || phase === 2) acc(1 / 3);
    else {
      mo = (this.curModelOutput as Tensor).axpby(1, 1 / 6, modelOutput);
      ownMo = true;
      (this.curModelOutput as Tensor).dispose();
      this.curModelOutput = null;
    }
    const cur = this.curSample ?? sample;
    const prev = this.prevSample(cur, t, prevT, mo);
    if (ownMo) mo.dispose();
    this.counter++;
    return prev;
  }

  private stepPlms(modelOutput: Tensor, timestep: number, sample: Tensor): Tensor {
    const n = this.numInferenceSteps as number;
    const N = this.numTrainTimesteps;
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new TorchvidError("ERR_TORCHVID_STATE", `${this.className}: PLMS needs the 3 model outputs of the PRK warm-up: run the PRK steps first (or set skip_prk_steps: true)`);
    }
    let t = timestep;
    let prevT = t - Math.floor(N / n);
    if (this.counter !== 1) {
      while (this.ets.length > 3) (this.ets.shift() as Tensor).dispose();
      this.ets.push(modelOutput.clone());
    } else {
      prevT = t;
      t = t + Math.floor(N / n);
    }
    const e = this.ets;
    const L = e.length;
    let mo: Tensor;
    let x = sample;
    if (L === 1 && this.counter === 0) {
      mo = modelOutput.clone();
      if (this.curSample) this.curSample.dispose();
      this.curSample = sample.clone();
    } else if (L === 1 && this.counter === 1) {
      mo = modelOutput.axpby(0.5, 0.5, e[L - 1]);
      x = this.curSample as Tensor;
    } else if (L === 2) mo = e[L - 1].axpby(1.5, -0.5, e[L - 2]);
    else if (L === 3) {
      mo = lincomb([
        [23 / 12, e[L - 1]],
        [-16 / 12, e[L - 2]],
        [5 / 12, e[L - 3]],
      ]);
    } else {
      mo = lincomb([
        [55 / 24, e[L - 1]],
        [-59 / 24, e[L - 2]],
        [37 / 24, e[L - 3]],
        [-9 / 24, e[L - 4]],
      ]);
    }
    const prev = this.prevSample(x, t, prevT, mo);
    mo.dispose();
    if (L === 1 && this.counter === 1) {
      (this.curSample as Tensor).dispose();
      this.curSample = null;
    }
    this.counter++;
    return prev;
  }

  /** Formula (9) of the PNDM paper: x_{t-delta} from x_t and the (combined) model output. */
  private prevSample(sample: Tensor, t: number, prevT: number, modelOutput: Tensor): Tensor {
    const a = this.alphaProd(t);
    const ap = this.alphaProdPrev(prevT);
    const b = f32(1 - a);
    const bp = f32(1 - ap);
    let mo = modelOutput;
    if (this.config.prediction_type === "v_prediction") mo = modelOutput.axpby(f32(Math.sqrt(a)), f32(Math.sqrt(b)), sample);
    const sampleCoeff = f32(Math.sqrt(f32(ap / a)));
    const denom = f32(f32(a * f32(Math.sqrt(bp))) + f32(Math.sqrt(f32(f32(a * b) * ap))));
    const out = sample.axpby(sampleCoeff, -f32(ap - a) / denom, mo);
    if (mo !== modelOutput) mo.dispose();
    return out;
  }
}
registerSpec(PNDMScheduler.className, PNDMScheduler.configSpec);
