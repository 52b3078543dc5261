/** Config key specs shared by several schedulers (diffusers names and defaults). */
import type { KeySpec } from "./base.ts";

export const BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;
export const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"] as const;
export const SPACINGS = ["linspace", "leading", "trailing"] as const;

// Each helper keeps its literal types (enum values, nullability) so ConfigOf<spec> can derive the
// TypeScript config type from the spec.

export function betaKeys<const S extends readonly string[] = typeof BETA_SCHEDULES>(
  defaults: { beta_start?: number; beta_end?: number; beta_schedule?: string; schedules?: S } = {},
) {
  return {
    num_train_timesteps: { default: 1000, kind: { type: "int", min: 1 } },
    // betas are probabilities: outside [0, 1] alphas_cumprod turns negative and every step NaN.
    beta_start: { default: defaults.beta_start ?? 0.0001, kind: { type: "number", min: 0, max: 1 } },
    beta_end: { default: defaults.beta_end ?? 0.02, kind: { type: "number", min: 0, max: 1 } },
    beta_schedule: { default: defaults.beta_schedule ?? "linear", kind: { type: "enum", values: (defaults.schedules ?? BETA_SCHEDULES) as S } },
    trained_betas: { default: null, kind: { type: "numbers", nullable: true } },
  } as const satisfies Record<string, KeySpec>;
}

export const K = {
  bool: (d: boolean) => ({ default: d, kind: { type: "bool" } }) as const satisfies KeySpec,
  int: (d: number, min = 0) => ({ default: d, kind: { type: "int", min } }) as const satisfies KeySpec,
  num: <const N extends boolean = false>(d: number | null, nullable?: N, infinite = false) =>
    ({ default: d, kind: { type: "number", nullable: (nullable ?? false) as N, infinite } }) as const satisfies KeySpec,
  oneOf: <const V extends readonly string[], const N extends boolean = false>(d: V[number] | null, values: V, nullable?: N) =>
    ({ default: d, kind: { type: "enum", values, nullable: (nullable ?? false) as N } }) as const satisfies KeySpec,
  prediction: () => ({ default: "epsilon", kind: { type: "enum", values: PREDICTION_TYPES } }) as const satisfies KeySpec,
  spacing: (d: (typeof SPACINGS)[number]) => ({ default: d, kind: { type: "enum", values: SPACINGS } }) as const satisfies KeySpec,
  intList: (d: readonly number[]) => ({ default: d, kind: { type: "numbers", int: true } }) as const satisfies KeySpec,
  scheduler: () => ({ default: null, kind: { type: "scheduler", nullable: true } }) as const satisfies KeySpec,
};

/**
 * The dynamic thresholding keys (Imagen; read by ops.ts thresholdSample for the x0 prediction),
 * in diffusers' order; `clipSampleRange` puts clip_sample_range among them as DDIM and DDPM do.
 */
type NumKey = ReturnType<typeof K.num<false>>;
type ThresholdingKeys = { thresholding: ReturnType<typeof K.bool>; dynamic_thresholding_ratio: NumKey; sample_max_value: NumKey };
export function thresholdingKeys(): ThresholdingKeys;
export function thresholdingKeys(options: { clipSampleRange: true }): ThresholdingKeys & { clip_sample_range: NumKey };
export function thresholdingKeys(options: { clipSampleRange?: boolean } = {}) {
  return {
    thresholding: K.bool(false),
    dynamic_thresholding_ratio: K.num(0.995),
    ...(options.clipSampleRange ? { clip_sample_range: K.num(1.0) } : {}),
    sample_max_value: K.num(1.0),
  };
}
