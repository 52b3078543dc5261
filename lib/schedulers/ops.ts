/**
 * Tensor helpers for scheduler steps: linear combinations through the fused `axpby`, noise draws,
 * dynamic thresholding. The schedulers only use methods of the tensors they are given (and the
 * static factories of their class), so they never load the addon themselves.
 */
import type { Generator, Tensor } from "../tensor.ts";
import { invalidParameter } from "../validate.ts";

type TensorClass = typeof Tensor;

/** The Tensor class a tensor belongs to (the factories to make more of its kind). */
export function tensorClassOf(t: Tensor): TensorClass {
  return t.constructor as TensorClass;
}

export function isTensor(x: unknown): x is Tensor {
  // `in`, not a read: a native tensor's shape getter is a call into the addon (every step checks its inputs).
  return typeof x === "object" && x !== null && typeof (x as Tensor).axpby === "function" && "shape" in x;
}

export function expectTensor(x: unknown, name: string): Tensor {
  if (!isTensor(x)) throw invalidParameter(name, "a Tensor", x, "type");
  return x;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function expectSameShape(t: Tensor, like: Tensor, name: string, likeName: string): void {
  if (!sameShape(t.shape, like.shape)) {
    throw new RangeError(`Expected ${name} to have the shape of ${likeName} [${like.shape.join(", ")}] but received [${t.shape.join(", ")}]`);
  }
}

/** Disposes what is given, skipping `keep` (tensors the caller still owns). */
export function release(keep: readonly (Tensor | undefined)[], ...ts: (Tensor | undefined | null)[]): void {
  for (const t of ts) {
    if (t && !keep.includes(t) && !t.disposed) t.dispose();
  }
}

/**
 * sum_i c_i * t_i as a chain of fused axpby calls (one new tensor per term after the first two);
 * intermediates are disposed. Terms with a zero coefficient are skipped (unless all are zero).
 */
export function lincomb(terms: readonly (readonly [number, Tensor])[]): Tensor {
  const live = terms.filter(([c]) => c !== 0);
  const use = live.length > 0 ? live : terms.slice(0, 1);
  if (use.length === 1) return use[0][1].mul(use[0][0]);
  let acc = use[0][1].axpby(use[0][0], use[1][0], use[1][1]);
  for (let i = 2; i < use.length; i++) {
    const next = acc.axpby(1, use[i][0], use[i][1]);
    acc.dispose();
    acc = next;
  }
  return acc;
}

/**
 * lincomb(terms) written into `target`, which must be the tensor of the first term: the same
 * operations in the same order as lincomb (so the same floats), without a new tensor. Returns
 * `target`, or lincomb's new tensor when `target`'s coefficient is zero (it is then unused).
 */
export function lincombInto(target: Tensor, terms: readonly (readonly [number, Tensor])[]): Tensor {
  if (terms[0]?.[1] !== target) throw new RangeError("lincombInto: the first term must be the target tensor");
  const live = terms.filter(([c]) => c !== 0);
  if (live.length > 0 && live[0][1] !== target) return lincomb(terms);
  const use = live.length > 0 ? live : terms.slice(0, 1);
  if (use.length === 1) {
    target.mulInPlace(use[0][0]);
    return target;
  }
  target.axpbyInPlace(use[0][0], use[1][0], use[1][1]);
  for (let i = 2; i < use.length; i++) target.axpbyInPlace(1, use[i][0], use[i][1]);
  return target;
}

export interface NoiseOptions {
  generator?: Generator;
  noise?: Tensor;
}

/**
 * The noise of a stochastic step: `noise` when given (shape checked; the caller keeps owning it),
 * else a draw of the sample's shape from `generator` (standard normal, on the CPU, then cast and
 * moved like diffusers' randn_tensor). `owned` says whether the caller must dispose it.
 */
export function stepNoise(like: Tensor, options: NoiseOptions): { noise: Tensor; owned: boolean } {
  if (options.noise !== undefined) {
    const noise = expectTensor(options.noise, "noise");
    expectSameShape(noise, like, "noise", "the sample");
    return { noise, owned: false };
  }
  const T = tensorClassOf(like);
  const noise = T.randn(like.shape, { generator: options.generator, dtype: like.dtype, device: like.device as never });
  return { noise, owned: true };
}

/**
 * diffusers' _threshold_sample (Imagen dynamic thresholding): per batch item, s = clamp(quantile(|x|,
 * ratio), 1, maxValue); x = clamp(x, -s, s) / s.
 */
export function thresholdSample(sample: Tensor, ratio: number, maxValue: number): Tensor {
  const shape = sample.shape;
  const dtype = sample.dtype;
  const up = dtype === "float32" || dtype === "float64" ? sample : sample.to("float32");
  const flat = up.reshape([shape[0], -1]);
  const abs = flat.abs();
  const q = abs.quantile(ratio, 1, true);
  const s = q.clamp(1, maxValue);
  const negS = s.mul(-1);
  const clamped = flat.clampTensor(negS, s);
  const scaled = clamped.div(s);
  const back = scaled.reshape(shape);
  const out = up === sample ? back : back.to(dtype);
  release([sample, out], up, flat, abs, q, s, negS, clamped, scaled, back);
  return out;
}

/** float32 view of a half-precision sample (diffusers `sample.to(torch.float32)`), or the sample itself. */
export function upcast(sample: Tensor): Tensor {
  return sample.dtype === "float32" || sample.dtype === "float64" ? sample : sample.to("float32");
}

/** `result` cast to `like`'s dtype (diffusers `prev_sample.to(model_output.dtype)`); disposes `result` when it casts. */
export function castLike(result: Tensor, like: Tensor): Tensor {
  if (result.dtype === like.dtype) return result;
  const out = result.to(like.dtype);
  result.dispose();
  return out;
}
