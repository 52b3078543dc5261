/** Config key specs shared by several schedulers (diffusers names and defaults). */
import type { KeySpec } from "./base.ts";

export const BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;
export const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"] as const;
export const SPACINGS = ["linspace", "leading", "trailing"] as const;

export function betaKeys(defaults: { beta_start?: number; beta_end?: number; beta_schedule?: string; schedules?: readonly string[] } = {}): Record<string, KeySpec> {
  return {
    num_train_timesteps: { default: 1000, kind: { type: "int", min: 1 } },
    // betas are probabilities: outside [0, 1] alphas_cumprod turns negative and every step NaN.
    beta_start: { default: defaults.beta_start ?? 0.0001, kind: { type: "number", min: 0, max: 1 } },
    beta_end: { default: defaults.beta_end ?? 0.02, kind: { type: "number", min: 0, max: 1 } },
    beta_schedule: { default: defaults.beta_schedule ?? "linear", kind: { type: "enum", values: defaults.schedules ?? BETA_SCHEDULES } },
    trained_betas: { default: null, kind: { type: "numbers", nullable: true } },
  };
}

export const K = {
  bool: (d: boolean): KeySpec => ({ default: d, kind: { type: "bool" } }),
  int: (d: number, min = 0): KeySpec => ({ default: d, kind: { type: "int", min } }),
  num: (d: number | null, nullable = false, infinite = false): KeySpec => ({ default: d, kind: { type: "number", nullable, infinite } }),
  oneOf: (d: string | null, values: readonly string[], nullable = false): KeySpec => ({ default: d, kind: { type: "enum", values, nullable } }),
  prediction: (): KeySpec => ({ default: "epsilon", kind: { type: "enum", values: PREDICTION_TYPES } }),
  spacing: (d: string): KeySpec => ({ default: d, kind: { type: "enum", values: SPACINGS } }),
};

/**
 * The dynamic thresholding keys (Imagen; read by ops.ts thresholdSample for the x0 prediction),
 * in diffusers' order; `clipSampleRange` puts clip_sample_range among them as DDIM and DDPM do.
 */
export function thresholdingKeys(options: { clipSampleRange?: boolean } = {}): Record<string, KeySpec> {
  return {
    thresholding: K.bool(false),
    dynamic_thresholding_ratio: K.num(0.995),
    ...(options.clipSampleRange ? { clip_sample_range: K.num(1.0) } : {}),
    sample_max_value: K.num(1.0),
  };
}
