/**
 * The scheduler protocol (diffusers' SchedulerMixin + ConfigMixin, trimmed to what a denoise loop
 * needs) and `fromConfig`, which reads a diffusers `scheduler_config.json` object exactly as
 * diffusers 0.27.2 `from_config` does:
 * - keys listed in `_use_default_values` (defaulted by the scheduler that wrote the config) are
 *   dropped, so this scheduler uses ITS OWN defaults for them;
 * - keys of the config's `_class_name` scheduler that this one does not take are dropped silently,
 *   other keys unknown to this scheduler are ignored with a warning (silently when they are known
 *   keys of another diffusers scheduler);
 * - `overrides` win over the config; an override key this scheduler does not take is a TypeError;
 * - the effective `config` lists every key of this scheduler (defaulted ones too), its
 *   `_use_default_values`, and the ignored keys of the source config (as diffusers keeps them).
 */
import { TorchvidError } from "../errors.ts";
import type { Generator, Tensor } from "../tensor.ts";
import { expectInt, expectNumber, invalidParameter } from "../validate.ts";
import { expectSameShape, expectTensor, isTensor, tensorClassOf } from "./ops.ts";

export const DIFFUSERS_VERSION = "0.27.2";

export type ConfigValue = number | string | boolean | null | readonly number[] | Record<string, unknown> | object;

/** How one config key is checked. */
export type KeyKind =
  | { type: "int"; min?: number }
  | { type: "number"; min?: number; max?: number; nullable?: boolean; infinite?: boolean }
  | { type: "bool" }
  | { type: "enum"; values: readonly string[]; nullable?: boolean }
  | { type: "numbers"; nullable?: boolean; int?: boolean }
  | { type: "scheduler"; nullable: true }
  | { type: "any" };

export interface KeySpec<Kind extends KeyKind = KeyKind> {
  default: ConfigValue;
  kind: Kind;
}

export type ConfigSpec = Readonly<Record<string, KeySpec>>;

type OrNull<Kind, T> = Kind extends { nullable: true } ? T | null : T;

/** The TypeScript type of a config value checked as `Kind`. */
export type ValueOfKind<Kind extends KeyKind> = Kind extends { type: "int" }
  ? number
  : Kind extends { type: "number" }
    ? OrNull<Kind, number>
    : Kind extends { type: "bool" }
      ? boolean
      : Kind extends { type: "enum"; values: readonly (infer V)[] }
        ? OrNull<Kind, V>
        : Kind extends { type: "numbers" }
          ? OrNull<Kind, number[]>
          : Kind extends { type: "scheduler" }
            ? Scheduler | null
            : unknown;

/**
 * The constructor config of a scheduler, derived from its spec so the keys, value types and
 * enum values are written once (the spec is also what fromConfig checks at run time).
 */
export type ConfigOf<Spec extends ConfigSpec> = { -readonly [Key in keyof Spec]?: ValueOfKind<Spec[Key]["kind"]> };

/** Keys every diffusers scheduler config may carry that are not __init__ arguments. */
export interface ConfigMeta {
  _class_name?: string;
  _diffusers_version?: string;
  _use_default_values?: string[];
  [key: string]: unknown;
}

/** Options of `step()`. */
export interface StepOptions {
  /** CPU generator for the noise of stochastic steps (DDIM eta > 0, DDPM, ancestral, LCM, SDE). */
  generator?: Generator;
  /** The noise a stochastic step adds, instead of drawing it (shape of the sample). */
  noise?: Tensor;
  /** DDIM only: the weight of the noise (0 = deterministic DDIM, 1 = DDPM-like). Defaults to 0. */
  eta?: number;
  /**
   * The caller gives up `sample`: a scheduler may write the previous sample into it and return
   * it instead of a new tensor (fewer allocations per step). Ignored by schedulers that keep the
   * sample. Defaults to false.
   */
  inPlace?: boolean;
}

export interface SetTimestepsOptions {
  /** LCMScheduler only: img2img strength of LCM's own set_timesteps. Defaults to 1. */
  strength?: number;
}

/** What `getTimestepsForStrength` chose (diffusers VideoToVideoSDPipeline.get_timesteps). */
export interface StrengthTimesteps {
  /** The timesteps to run, from the first one noised to. */
  timesteps: number[];
  /** The number of denoising steps that will run (diffusers returns num_inference_steps - t_start). */
  numInferenceSteps: number;
  /** Index into the full schedule of the first timestep run (t_start * order). */
  beginIndex: number;
  /** The timestep to noise the encoded video to (the first of `timesteps`). */
  latentTimestep: number;
}

/** Every __init__ key of the diffusers schedulers (any version we know of): ignored quietly. */
const OTHER_DIFFUSERS_KEYS = new Set([
  "predict_epsilon",
  "tensor_format",
  "sigma_data",
  "s_noise",
  "rho",
  "use_exponential_sigmas",
  "use_beta_sigmas",
  "noise_sampler_seed",
  "shift",
  "use_dynamic_shifting",
  "base_shift",
  "max_shift",
  "base_image_seq_len",
  "max_image_seq_len",
  "invert_sigmas",
  "shift_terms",
  "use_flow_sigmas",
  "flow_shift",
  "final_sigmas_type",
  "timestep_type",
  "lambda_min_clipped",
  "use_lu_lambdas",
  "euler_at_final",
  "variance_type",
  "clip_sample",
  "clip_sample_range",
  "set_alpha_to_one",
  "skip_prk_steps",
  "solver_p",
  "predict_x0",
  "disable_corrector",
  "original_inference_steps",
  "timestep_scaling",
  "interpolation_type",
  "sigma_min",
  "sigma_max",
  "num_train_timesteps",
  "beta_start",
  "beta_end",
  "beta_schedule",
  "trained_betas",
  "prediction_type",
  "thresholding",
  "dynamic_thresholding_ratio",
  "sample_max_value",
  "timestep_spacing",
  "steps_offset",
  "rescale_betas_zero_snr",
  "solver_order",
  "algorithm_type",
  "solver_type",
  "lower_order_final",
  "use_karras_sigmas",
  "stochastic_sampling",
  "eta",
  "num_train_steps",
]);

const knownSpecs = new Map<string, ConfigSpec>();

/** Registers a scheduler's spec under its diffusers class name (for fromConfig of other classes). */
export function registerSpec(className: string, spec: ConfigSpec): void {
  knownSpecs.set(className, spec);
}

function checkValue(className: string, key: string, kind: KeyKind, value: unknown): ConfigValue {
  const name = `${className} config ${key}`;
  switch (kind.type) {
    case "int":
      return expectInt(value, name, { min: kind.min });
    case "number":
      if (value === null && kind.nullable) return null;
      // diffusers writes -inf as -Infinity, which JSON readers may hand over as a string; only
      // keys where infinity means something (lambda_min_clipped: no clipping) take it.
      if (kind.infinite) {
        if (value === "-Infinity" || value === "-inf" || value === -Infinity) return -Infinity;
        if (value === "Infinity" || value === "inf" || value === Infinity) return Infinity;
      }
      return expectNumber(value, name, { min: kind.min, max: kind.max });
    case "bool":
      if (typeof value !== "boolean") throw invalidParameter(name, "a boolean", value, "type");
      return value;
    case "enum":
      if (value === null && kind.nullable) return null;
      if (typeof value !== "string" || !kind.values.includes(value)) {
        const message = `Expected one of ${kind.values.map((v) => JSON.stringify(v)).join(", ")} for ${name} but received ${JSON.stringify(value)}`;
        throw typeof value === "string" ? new RangeError(message) : new TypeError(message);
      }
      return value;
    case "numbers":
      if (value === null && kind.nullable) return null;
      if (!Array.isArray(value)) throw invalidParameter(name, kind.nullable ? "an array of numbers or null" : "an array of numbers", value, "type");
      return value.map((v, i) => (kind.int ? expectInt(v, `${name}[${i}]`) : expectNumber(v, `${name}[${i}]`)));
    case "scheduler":
      if (value === null || value instanceof Scheduler) return value as ConfigValue;
      throw new TypeError(
        `Expected a Scheduler instance or null for ${name} but received ${typeof value}: pass e.g. DPMSolverMultistepScheduler.fromConfig(config) (a scheduler_config.json cannot name one)`,
      );
    case "any":
      return value as ConfigValue;
  }
}

export interface SchedulerClass<T extends Scheduler = Scheduler> {
  new (config?: Record<string, unknown>): T;
  readonly className: string;
  readonly configSpec: ConfigSpec;
  fromConfig(config: Record<string, unknown>, overrides?: Record<string, unknown>): T;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Base of every scheduler. Subclasses declare `className` and `configSpec` (their diffusers
 * __init__ keys and defaults, in signature order) and implement the math.
 */
export abstract class Scheduler {
  static readonly className: string = "Scheduler";
  static readonly configSpec: ConfigSpec = {};

  /** The effective config, with diffusers keys (snake_case), including defaulted ones. */
  readonly config: Readonly<Record<string, unknown>>;

  /** The timesteps of the current schedule (after setTimesteps), in the order they run. */
  timesteps: number[] = [];
  /** The number of inference steps given to setTimesteps (null before). */
  numInferenceSteps: number | null = null;

  protected stepIndexValue: number | null = null;
  protected beginIndexValue: number | null = null;

  /**
   * @param config diffusers __init__ arguments (snake_case keys); missing ones take this
   * scheduler's defaults. Unknown keys are a TypeError here (use `fromConfig` to read a file).
   */
  constructor(config: Record<string, unknown> = {}) {
    const cls = this.constructor as SchedulerClass;
    if (!isPlainObject(config)) throw invalidParameter("config", "an object", config, "type");
    const spec = cls.configSpec;
    const effective: Record<string, unknown> = {};
    const defaulted: string[] = [];
    for (const key of Object.keys(config)) {
      if (!(key in spec) && !key.startsWith("_")) {
        throw new TypeError(`${cls.className} has no config key "${key}": expected one of ${Object.keys(spec).join(", ")}`);
      }
    }
    for (const [key, ks] of Object.entries(spec)) {
      if (key in config && config[key] !== undefined) effective[key] = checkValue(cls.className, key, ks.kind, config[key]);
      else {
        effective[key] = Array.isArray(ks.default) ? [...ks.default] : ks.default;
        defaulted.push(key);
      }
    }
    if (defaulted.length > 0) effective._use_default_values = defaulted.sort();
    for (const [key, value] of Object.entries(config)) if (key.startsWith("_") && key !== "_use_default_values") effective[key] = value;
    effective._class_name = cls.className;
    if (effective._diffusers_version === undefined) effective._diffusers_version = DIFFUSERS_VERSION;
    this.config = effective;
  }

  /**
   * Builds this scheduler from a diffusers scheduler config (e.g. the parsed
   * `scheduler/scheduler_config.json`, or another scheduler's `.config`), as diffusers'
   * `XScheduler.from_config(config, **overrides)`.
   */
  static fromConfig<T extends Scheduler>(this: SchedulerClass<T>, config: Record<string, unknown>, overrides: Record<string, unknown> = {}): T {
    if (!isPlainObject(config)) throw invalidParameter("config", "a scheduler config object", config, "type");
    if (!isPlainObject(overrides)) throw invalidParameter("overrides", "an object", overrides, "type");
    const spec = this.configSpec;
    for (const key of Object.keys(overrides)) {
      if (!(key in spec)) {
        throw new TypeError(`${this.className} has no config key "${key}" (in overrides): expected one of ${Object.keys(spec).join(", ")}`);
      }
    }
    const usedDefaults = Array.isArray(config._use_default_values) ? (config._use_default_values as unknown[]) : [];
    let source: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) if (!usedDefaults.includes(k) && k !== "_use_default_values") source[k] = v;
    const original = { ...source };
    const origClass = source._class_name;
    if (typeof origClass === "string" && origClass !== this.className && knownSpecs.has(origClass)) {
      const origSpec = knownSpecs.get(origClass)!;
      source = Object.fromEntries(Object.entries(source).filter(([k]) => !(k in origSpec) || k in spec));
    }
    const init: Record<string, unknown> = {};
    for (const key of Object.keys(spec)) {
      if (key in overrides) init[key] = overrides[key];
      else if (key in source) init[key] = source[key];
    }
    const unexpected = Object.keys(source).filter((k) => !k.startsWith("_") && !(k in spec));
    const strange = unexpected.filter((k) => !OTHER_DIFFUSERS_KEYS.has(k) && ![...knownSpecs.values()].some((s) => k in s));
    if (strange.length > 0) {
      process.emitWarning(
        `The config attributes ${strange.map((k) => JSON.stringify(k)).join(", ")} were passed to ${this.className}, but are not expected and will be ignored. Please verify your scheduler_config.json.`,
        { code: "TORCHVID_SCHEDULER_CONFIG" },
      );
    }
    const scheduler = new this(init);
    // diffusers keeps the keys it did not use ("hidden" config of compatible classes).
    const effective = scheduler.config as Record<string, unknown>;
    for (const [k, v] of Object.entries(original)) if (!(k in init) && !(k in effective)) effective[k] = v;
    if (typeof original._diffusers_version === "string") effective._diffusers_version = original._diffusers_version;
    effective._class_name = this.className;
    return scheduler;
  }

  /** The className of this instance's class. */
  get className(): string {
    return (this.constructor as SchedulerClass).className;
  }

  /** Steps taken per entry of the schedule (diffusers `order`; 2 for Heun). */
  get order(): number {
    return 1;
  }

  /** Standard deviation of the initial noise: latents = randn * initNoiseSigma. */
  get initNoiseSigma(): number {
    return 1.0;
  }

  /** Index of the next step into `timesteps` (null until the first step/scaleModelInput). */
  get stepIndex(): number | null {
    return this.stepIndexValue;
  }

  /** The first index to run, when set (video-to-video). */
  get beginIndex(): number | null {
    return this.beginIndexValue;
  }

  /** Sets the index of the first timestep that will run (diffusers set_begin_index). */
  setBeginIndex(beginIndex = 0): void {
    this.beginIndexValue = expectInt(beginIndex, "beginIndex", { min: 0 });
  }

  protected get numTrainTimesteps(): number {
    return this.config.num_train_timesteps as number;
  }

  /** Checks numInferenceSteps against the training schedule. */
  protected checkNumSteps(n: unknown): number {
    const N = this.numTrainTimesteps;
    if (typeof n !== "number" || !Number.isInteger(n)) throw invalidParameter("numInferenceSteps", "an integer", n, typeof n === "number" ? "range" : "type");
    if (n < 1 || n > N) {
      throw new RangeError(
        `Expected numInferenceSteps between 1 and num_train_timesteps (${N}) for ${this.className} but received ${n}: the model was trained with ${N} timesteps at most`,
      );
    }
    return n;
  }

  protected checkStrength(strength: unknown): number {
    if (typeof strength !== "number" || Number.isNaN(strength)) throw invalidParameter("strength", "a number", strength, typeof strength === "number" ? "range" : "type");
    if (!(strength > 0 && strength <= 1)) throw new RangeError(`Expected strength in (0, 1] but received ${strength}: 1 re-noises the whole video, values near 0 keep it`);
    return strength;
  }

  /** Builds the schedule for `numInferenceSteps` denoising steps. */
  setTimesteps(numInferenceSteps: number, options: SetTimestepsOptions = {}): void {
    const n = this.checkNumSteps(numInferenceSteps);
    if (options.strength !== undefined && options.strength !== 1) {
      this.checkStrength(options.strength);
      throw new TypeError(`setTimesteps({ strength }) is LCMScheduler's own option; for ${this.className} use getTimestepsForStrength(numInferenceSteps, strength)`);
    }
    this.stepIndexValue = null;
    this.beginIndexValue = null;
    this.buildSchedule(n);
    this.checkScheduleRange(n);
  }

  /** A schedule reaching past the training timesteps would fail at its first step: say so now. */
  protected checkScheduleRange(n: number): void {
    const N = this.numTrainTimesteps;
    const bad = this.timesteps.find((t) => t > N - 1 || t < 0);
    if (bad !== undefined) {
      throw new RangeError(
        `${this.className}: ${n} steps with timestep_spacing "${String(this.config.timestep_spacing)}" and steps_offset ${String(this.config.steps_offset ?? 0)} reach timestep ${bad}, outside the training timesteps 0..${N - 1} (diffusers fails at the first step): use fewer steps`,
      );
    }
  }

  protected abstract buildSchedule(n: number): void;

  /**
   * Video-to-video: sets the schedule for `numInferenceSteps` and keeps its last `strength` part
   * (diffusers VideoToVideoSDPipeline.get_timesteps: init_timestep = min(int(n*strength), n);
   * t_start = max(n - init_timestep, 0); timesteps[t_start*order:]); also sets the begin index.
   */
  getTimestepsForStrength(numInferenceSteps: number, strength: number): StrengthTimesteps {
    const n = this.checkNumSteps(numInferenceSteps);
    const s = this.checkStrength(strength);
    this.setTimesteps(n);
    const initTimestep = Math.min(Math.floor(n * s), n);
    const tStart = Math.max(n - initTimestep, 0);
    const begin = tStart * this.order;
    const timesteps = this.timesteps.slice(begin);
    if (timesteps.length === 0) {
      throw new RangeError(`strength ${s} with ${n} steps leaves no denoising step (int(${n} * ${s}) = 0): raise strength or numInferenceSteps`);
    }
    if (this.supportsBeginIndex) this.setBeginIndex(begin);
    return { timesteps, numInferenceSteps: n - tStart, beginIndex: begin, latentTimestep: timesteps[0] };
  }

  /** Whether diffusers' version of this scheduler has set_begin_index. */
  protected get supportsBeginIndex(): boolean {
    return true;
  }

  /** Scales the denoising model input (identity for most schedulers: then `sample` itself is returned). */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    expectTensor(sample, "sample");
    return sample;
  }

  /**
   * One denoising step: returns the previous (less noisy) sample, a new tensor the caller owns
   * (or `sample` itself, updated, when `options.inPlace` allows it).
   */
  abstract step(modelOutput: Tensor, timestep: number, sample: Tensor, options?: StepOptions): Tensor;

  /**
   * Whether step() with these options works element by element (no noise drawn, no per-row
   * thresholding): then a pipeline may pass its tensors in any layout, e.g. the UNet's
   * [B, C, F, h, w] instead of diffusers' [B*F, C, h, w], and skip two copies per step. False
   * unless a scheduler says otherwise.
   */
  stepIsElementwise(_options: StepOptions = {}): boolean {
    return false;
  }

  /** The (sqrt(alpha), sqrt(1 - alpha)) pair that noises a clean sample to `timestep`. */
  protected abstract noiseCoefficients(timestep: number, index: number): [number, number];

  /**
   * Noises clean samples to the given timestep(s) (diffusers add_noise): one timestep for the whole
   * batch, or one per batch item.
   */
  addNoise(original: Tensor, noise: Tensor, timesteps: number | readonly number[]): Tensor {
    expectTensor(original, "original");
    expectTensor(noise, "noise");
    expectSameShape(noise, original, "noise", "original");
    const ts = typeof timesteps === "number" ? [timesteps] : timesteps;
    if (!Array.isArray(ts) || ts.length === 0) throw invalidParameter("timesteps", "a timestep or a non-empty array of timesteps", timesteps, Array.isArray(ts) ? "range" : "type");
    ts.forEach((t, i) => expectNumber(t, `timesteps[${i}]`));
    const coefs = ts.map((t, i) => this.noiseCoefficients(t, i));
    const allSame = coefs.every(([a, b]) => a === coefs[0][0] && b === coefs[0][1]);
    if (allSame) return original.axpby(coefs[0][0], coefs[0][1], noise);
    const B = original.shape[0];
    if (ts.length !== B) throw new RangeError(`Expected 1 or ${B} timesteps (one per batch item) but received ${ts.length}`);
    const T = tensorClassOf(original);
    const bshape = [B, ...original.shape.slice(1).map(() => 1)];
    const opts = { dtype: original.dtype, device: original.device as never };
    const a = T.from(Float32Array.from(coefs.map((c) => c[0])), bshape, opts);
    const b = T.from(Float32Array.from(coefs.map((c) => c[1])), bshape, opts);
    const x = original.mul(a);
    const y = noise.mul(b);
    const out = x.add(y);
    for (const t of [a, b, x, y]) t.dispose();
    return out;
  }

  protected requireSchedule(): void {
    if (this.numInferenceSteps === null) throw new TorchvidError("ERR_TORCHVID_STATE", `${this.className}: call setTimesteps(numInferenceSteps) before step()`);
  }

  protected checkStepArgs(modelOutput: Tensor, timestep: number, sample: Tensor): void {
    this.requireSchedule();
    expectTensor(modelOutput, "modelOutput");
    expectTensor(sample, "sample");
    expectNumber(timestep, "timestep");
    if (this.stepIndexValue !== null && this.stepIndexValue >= this.timesteps.length) {
      throw new RangeError(`${this.className}: all ${this.timesteps.length} steps of the schedule were taken: call setTimesteps() again to start a new run`);
    }
  }

  /** diffusers index_for_timestep: the position of `t` in the schedule (the 2nd match if repeated). */
  protected indexForTimestep(t: number, schedule: readonly number[] = this.timesteps): number {
    const idx: number[] = [];
    schedule.forEach((v, i) => {
      if (v === t) idx.push(i);
    });
    if (idx.length === 0) throw new RangeError(`timestep ${t} is not in ${this.className}'s schedule [${schedule.slice(0, 6).join(", ")}${schedule.length > 6 ? ", ..." : ""}]`);
    return idx.length > 1 ? idx[1] : idx[0];
  }

  protected initStepIndex(t: number): void {
    this.stepIndexValue = this.beginIndexValue === null ? this.indexForTimestep(t) : this.beginIndexValue;
  }

  /**
   * Frees the tensors a multistep scheduler keeps between steps (model outputs, derivatives).
   * setTimesteps frees them too; the scheduler stays usable.
   */
  dispose(): void {}

  /** For diagnostics: `DDIMScheduler(steps=25)`. */
  toString(): string {
    return `${this.className}(steps=${this.numInferenceSteps ?? "unset"})`;
  }
}

export { isTensor };

/** Reads a key of the effective config with its type. */
export function cfg<T>(s: Scheduler, key: string): T {
  return s.config[key] as T;
}
