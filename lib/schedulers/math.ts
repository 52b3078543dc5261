/**
 * Scalar numerics shared by the schedulers: the float32 tables diffusers builds with torch/numpy
 * (betas, alphas_cumprod, sigmas), timestep spacings, Karras sigmas and sigma -> t inversion.
 * Everything here is plain JS numbers: no tensors, no addon.
 *
 * diffusers computes these tables as float32 torch tensors or numpy arrays; `Math.fround` is applied
 * where torch/numpy round to float32 so the tables (and timesteps derived from them) come out
 * bit-identical to diffusers 0.27.2 on x86-64 (checked against the reference data).
 */

export const f32 = Math.fround;

/** numpy's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (Math.abs(x - Math.trunc(x)) === 0.5) return 2 * Math.round(x / 2);
  return r;
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on the CPU as torch 1.13+ computes it
 * (AVX2 kernel: blocks of 8, each block `base + j*step` from a fused-multiply-add base, the second
 * half counted back from `end`).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32((e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const V = 8;
  let i = 0;
  for (; i + V <= steps; i += V) {
    const base = i < half ? f32(s + step * i) : f32(e - step * (steps - i - 1));
    out[i] = base;
    for (let j = 1; j < V; j++) out[i + j] = f32(base + j * step);
  }
  for (; i < steps; i++) out[i] = i < half ? f32(s + step * i) : f32(e - step * (steps - 1 - i));
  return out;
}

/** numpy.linspace(start, stop, num) in float64 (endpoint included). */
export function npLinspace(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const delta = stop - start;
  const out: number[] = [];
  if (div > 0) {
    const step = delta / div;
    for (let i = 0; i < num; i++) out.push(step === 0 ? (i / div) * delta + start : i * step + start);
  } else {
    for (let i = 0; i < num; i++) out.push(i * delta + start);
  }
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/** numpy.arange(start, stop, step) for float steps. */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  for (let i = 0; i < len; i++) out.push(start + i * step);
  return out;
}

/** numpy.interp(x, arange(len(fp)), fp) (float64 result). */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0];
  if (x >= n - 1) return fp[n - 1];
  const j = Math.floor(x);
  const slope = (fp[j + 1] - fp[j]) / 1;
  return slope * (x - j) + fp[j];
}

export type BetaSchedule = "linear" | "scaled_linear" | "squaredcos_cap_v2" | "sigmoid" | "exp";

/** diffusers' betas_for_alpha_bar (python doubles, then a float32 tensor). */
export function betasForAlphaBar(n: number, maxBeta = 0.999, transform: "cosine" | "exp" = "cosine"): Float32Array {
  const alphaBar = transform === "cosine" ? (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2 : (t: number) => Math.exp(t * -12.0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t1 = i / n;
    const t2 = (i + 1) / n;
    out[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return out;
}

export function makeBetas(opts: {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: string;
  trainedBetas: readonly number[] | null;
  className: string;
}): Float32Array {
  const { numTrainTimesteps: n, betaStart, betaEnd, betaSchedule, trainedBetas } = opts;
  if (trainedBetas !== null && trainedBetas !== undefined) return Float32Array.from(trainedBetas);
  switch (betaSchedule) {
    case "linear":
      return torchLinspaceF32(betaStart, betaEnd, n);
    case "scaled_linear": {
      const l = torchLinspaceF32(Math.sqrt(betaStart), Math.sqrt(betaEnd), n);
      return l.map((v) => f32(v * v));
    }
    case "squaredcos_cap_v2":
      return betasForAlphaBar(n);
    case "exp":
      return betasForAlphaBar(n, 0.999, "exp");
    case "sigmoid": {
      const l = torchLinspaceF32(-6, 6, n);
      const scale = f32(betaEnd - betaStart);
      return l.map((v) => f32(f32(f32(1 / (1 + Math.exp(-v))) * scale) + betaStart));
    }
    default:
      throw new RangeError(`beta_schedule "${betaSchedule}" is not implemented for ${opts.className}`);
  }
}

/** torch.cumprod over float32 (CPU: accumulated in double, stored as float32). */
export function cumprodF32(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  let p = 1;
  for (let i = 0; i < values.length; i++) {
    p *= values[i];
    out[i] = p;
  }
  return out;
}

/** diffusers' rescale_zero_terminal_snr (https://arxiv.org/pdf/2305.08891.pdf, Algorithm 1), in float32. */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const alphas = betas.map((b) => f32(1 - b));
  const ac = cumprodF32(alphas);
  const sq = ac.map((v) => f32(Math.sqrt(v)));
  const a0 = sq[0];
  const aT = sq[sq.length - 1];
  const scale = f32(a0 / f32(a0 - aT));
  const shifted = sq.map((v) => f32(f32(v - aT) * scale));
  const bar = shifted.map((v) => f32(v * v));
  const out = new Float32Array(betas.length);
  out[0] = f32(1 - bar[0]);
  for (let i = 1; i < bar.length; i++) out[i] = f32(1 - f32(bar[i] / bar[i - 1]));
  return out;
}

/** alphas_cumprod from betas: float32 `1 - beta`, then the cumulative product. */
export function alphasCumprodOf(betas: Float32Array): Float32Array {
  return cumprodF32(betas.map((b) => f32(1 - b)));
}

/** ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32, ascending in t. */
export function sigmasOf(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** Karras et al. (2022) noise levels, as diffusers' _convert_to_karras (rho = 7). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7.0;
  const ramp = npLinspace(0, 1, n);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/**
 * diffusers' _sigma_to_t: the fractional training timestep of a sigma (log-linear interpolation).
 * numpy 1.x value-based casting makes the float64 log(sigma) a float32 against the float32
 * log_sigmas, so the distances and the weight w are float32; only the final blend is float64.
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = f32(Math.log(Math.max(sigma, 1e-10)));
  const n = logSigmas.length;
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  low = Math.min(low, n - 2);
  const high = low + 1;
  const lo = logSigmas[low];
  const hi = logSigmas[high];
  let w = f32(f32(lo - logSigma) / f32(lo - hi));
  w = Math.min(1, Math.max(0, w));
  return f32(1 - w) * low + w * high;
}

export type TimestepSpacing = "linspace" | "leading" | "trailing";

/**
 * The training-timestep grid most schedulers use: `n` values, descending, as float64 numbers
 * (callers round / cast as their diffusers counterpart does).
 * - linspace: np.linspace(0, N-1, n)[::-1]
 * - leading:  (np.arange(n) * (N // n)).round()[::-1] + steps_offset
 * - trailing: np.arange(N, 0, -N/n).round() - 1
 */
export function spacedTimesteps(spacing: TimestepSpacing, N: number, n: number, stepsOffset: number, className: string): number[] {
  switch (spacing) {
    case "linspace":
      return npLinspace(0, N - 1, n).reverse();
    case "leading": {
      const ratio = Math.floor(N / n);
      const out: number[] = [];
      for (let i = n - 1; i >= 0; i--) out.push(roundHalfEven(i * ratio) + stepsOffset);
      return out;
    }
    case "trailing": {
      const ratio = N / n;
      return npArange(N, 0, -ratio).map((v) => roundHalfEven(v) - 1);
    }
    default:
      throw new RangeError(`timestep_spacing "${String(spacing)}" is not supported for ${className}: use "linspace", "leading" or "trailing"`);
  }
}

/** betas and alphas_cumprod of a config with the usual keys (num_train_timesteps, beta_*, trained_betas, rescale_betas_zero_snr). */
export function trainingSchedule(
  config: Readonly<Record<string, unknown>>,
  className: string,
  options: { zeroSnrEpsilon?: boolean } = {},
): { betas: Float32Array; alphasCumprod: Float32Array } {
  let betas = makeBetas({
    numTrainTimesteps: config.num_train_timesteps as number,
    betaStart: config.beta_start as number,
    betaEnd: config.beta_end as number,
    betaSchedule: config.beta_schedule as string,
    trainedBetas: (config.trained_betas as number[] | null) ?? null,
    className,
  });
  if (betas.length !== config.num_train_timesteps) {
    throw new RangeError(`${className}: trained_betas has ${betas.length} values but num_train_timesteps is ${String(config.num_train_timesteps)}`);
  }
  const rescale = config.rescale_betas_zero_snr === true;
  if (rescale) betas = rescaleZeroTerminalSnr(betas);
  const alphasCumprod = alphasCumprodOf(betas);
  // Close to 0 without being 0 so the first sigma is not inf (fp16 smallest subnormal).
  if (rescale && options.zeroSnrEpsilon) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  return { betas, alphasCumprod };
}
