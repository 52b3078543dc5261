/**
 * Tensor handles: libtorch tensors that stay on their device (CPU or GPU). Every op returns a
 * new handle; the caller owns it and may `dispose()` it early (the GC frees it otherwise).
 * Arguments are checked here, so misuse is a TypeError/RangeError before it reaches libtorch.
 */
import { native } from "./native.ts";
import type { DType, HostArray, NativeGenerator, NativeTensor } from "./native-types.ts";
import { TorchvidError, wrapNative } from "./errors.ts";
import { deviceQueue } from "./device-queue.ts";
import { expectInt, expectIntArray, expectNumber, expectOneOf, invalidParameter } from "./validate.ts";

export type { DType, HostArray } from "./native-types.ts";

/** A device string: "cpu", "cuda" or "cuda:N". */
export type Device = "cpu" | "cuda" | `cuda:${number}`;

const DTYPES: readonly DType[] = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool"];

export function checkDType(value: unknown, name = "dtype"): DType {
  if (typeof value !== "string" || !DTYPES.includes(value as DType)) {
    throw invalidParameter(name, `one of ${DTYPES.join(", ")}`, value, typeof value === "string" ? "range" : "type");
  }
  return value as DType;
}

export function checkDevice(value: unknown, name = "device"): Device {
  if (typeof value !== "string" || !/^(cpu|cuda(:\d+)?)$/.test(value)) {
    throw invalidParameter(name, `"cpu", "cuda" or "cuda:N"`, value, typeof value === "string" ? "range" : "type");
  }
  return value as Device;
}

function checkShape(shape: unknown, name = "shape"): number[] {
  return expectIntArray(shape, name, { min: 0 });
}

function hostDTypeOf(data: HostArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof BigInt64Array) return "int64";
  throw invalidParameter("data", "a Float32Array, Float64Array, Int32Array, Uint8Array or BigInt64Array", data, "type");
}

/** Normalises a seed (number or bigint) to the unsigned 64-bit value torch uses. */
export function toSeed(seed: unknown, name = "seed"): bigint {
  if (typeof seed === "bigint") return BigInt.asUintN(64, seed);
  if (typeof seed === "number" && Number.isInteger(seed)) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Expected a safe integer for ${name} but received ${seed}: pass larger seeds as a BigInt`);
    }
    return BigInt.asUintN(64, BigInt(seed));
  }
  throw invalidParameter(name, "an integer number or a BigInt", seed, typeof seed === "number" ? "range" : "type");
}

/**
 * A CPU random generator equivalent to `torch.Generator("cpu").manual_seed(seed)`: the same
 * seed gives the same draws, in the same order, as Python torch.
 */
export class Generator {
  /** @internal */
  readonly handle: NativeGenerator;

  constructor(seed?: number | bigint) {
    const { Generator: NativeGeneratorCtor } = native();
    this.handle = new NativeGeneratorCtor();
    if (seed !== undefined) this.manualSeed(seed);
  }

  /** Reseeds; returns this (like torch). */
  manualSeed(seed: number | bigint): this {
    this.handle.manualSeed(toSeed(seed));
    return this;
  }

  get initialSeed(): bigint {
    return this.handle.initialSeed;
  }

  /** Snapshot of the generator state (to replay the same draws). */
  getState(): Uint8Array {
    return this.handle.getState();
  }

  setState(state: Uint8Array): this {
    if (!(state instanceof Uint8Array)) throw invalidParameter("state", "a Uint8Array from getState()", state, "type");
    wrapNative(() => this.handle.setState(state));
    return this;
  }
}

function unwrap(t: Tensor | number, name: string): NativeTensor | number {
  if (typeof t === "number") {
    if (Number.isNaN(t)) throw new RangeError(`Expected a number for ${name} but received NaN`);
    return expectNumber(t, name);
  }
  if (t instanceof Tensor) return t.handle;
  throw invalidParameter(name, "a Tensor or a number", t, "type");
}

export class Tensor {
  /** @internal */
  readonly #h: NativeTensor;

  /** @internal Wraps a native handle; use the static factories instead. */
  constructor(handle: NativeTensor) {
    this.#h = handle;
  }

  /** @internal */
  get handle(): NativeTensor {
    if (this.#h.disposed) {
      throw new TorchvidError("ERR_TORCHVID_DISPOSED", "This Tensor was disposed: create a new one instead of reusing it");
    }
    return this.#h;
  }

  // ---- factories ----------------------------------------------------------------------

  /**
   * Copies host data into a new tensor. `dtype` defaults to the array's own type; a different
   * dtype is a cast after the copy (e.g. Float32Array -> "bfloat16").
   */
  static from(data: HostArray | number[], shape: readonly number[], options: { dtype?: DType; device?: Device } = {}): Tensor {
    const array = Array.isArray(data) ? Float32Array.from(data) : data;
    const hostType = hostDTypeOf(array);
    const dims = checkShape(shape);
    const numel = dims.reduce((a, b) => a * b, 1);
    if (numel !== array.length) {
      throw new RangeError(`shape [${dims.join(", ")}] holds ${numel} elements but data has ${array.length}`);
    }
    const dtype = options.dtype === undefined ? hostType : checkDType(options.dtype);
    const device = options.device === undefined ? "cpu" : checkDevice(options.device);
    return new Tensor(wrapNative(() => native().Tensor.fromArray(array, dims, dtype, device)));
  }

  static zeros(shape: readonly number[], options: { dtype?: DType; device?: Device } = {}): Tensor {
    const dtype = options.dtype === undefined ? "float32" : checkDType(options.dtype);
    const device = options.device === undefined ? "cpu" : checkDevice(options.device);
    return new Tensor(wrapNative(() => native().Tensor.zeros(checkShape(shape), dtype, device)));
  }

  /**
   * Standard normal noise, bit-identical to
   * `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`. Noise is always
   * drawn on the CPU (as diffusers does) in float32, then cast and moved.
   */
  static randn(shape: readonly number[], options: { generator?: Generator; seed?: number | bigint; dtype?: DType; device?: Device } = {}): Tensor {
    const dims = checkShape(shape);
    let generator = options.generator;
    if (generator === undefined) generator = new Generator(options.seed ?? BigInt(Math.floor(Math.random() * 2 ** 52)));
    else if (!(generator instanceof Generator)) throw invalidParameter("generator", "a torchvid Generator", generator, "type");
    const dtype = options.dtype === undefined ? "float32" : checkDType(options.dtype);
    const device = options.device === undefined ? "cpu" : checkDevice(options.device);
    return new Tensor(wrapNative(() => native().Tensor.randn(dims, generator.handle, dtype, device)));
  }

  /** Concatenates along `dim` (negative counts from the end). */
  static cat(tensors: readonly Tensor[], dim = 0): Tensor {
    if (!Array.isArray(tensors) || tensors.length === 0) throw invalidParameter("tensors", "a non-empty array of Tensors", tensors, Array.isArray(tensors) ? "range" : "type");
    const handles = tensors.map((t, i) => {
      if (!(t instanceof Tensor)) throw invalidParameter(`tensors[${i}]`, "a Tensor", t, "type");
      return t.handle;
    });
    return new Tensor(wrapNative(() => native().Tensor.cat(handles, expectInt(dim, "dim")), "ERR_TORCHVID_SHAPE"));
  }

  // ---- properties ---------------------------------------------------------------------

  get shape(): number[] {
    return this.handle.shape;
  }
  get dtype(): DType {
    return this.handle.dtype;
  }
  get device(): string {
    return this.handle.device;
  }
  get numel(): number {
    return this.handle.shape.reduce((a, b) => a * b, 1);
  }
  get disposed(): boolean {
    return this.#h.disposed;
  }

  // ---- element-wise -------------------------------------------------------------------

  /** this + alpha * other (alpha defaults to 1). */
  add(other: Tensor | number, alpha = 1): Tensor {
    const o = unwrap(other, "other");
    return new Tensor(wrapNative(() => this.handle.add(o, expectNumber(alpha, "alpha")), "ERR_TORCHVID_SHAPE"));
  }
  sub(other: Tensor | number): Tensor {
    const o = unwrap(other, "other");
    return new Tensor(wrapNative(() => this.handle.sub(o), "ERR_TORCHVID_SHAPE"));
  }
  mul(other: Tensor | number): Tensor {
    const o = unwrap(other, "other");
    return new Tensor(wrapNative(() => this.handle.mul(o), "ERR_TORCHVID_SHAPE"));
  }
  div(other: Tensor | number): Tensor {
    const o = unwrap(other, "other");
    return new Tensor(wrapNative(() => this.handle.div(o), "ERR_TORCHVID_SHAPE"));
  }
  /** a * this + b * y, fused into one native call (the core of every scheduler step). */
  axpby(a: number, b: number, y: Tensor): Tensor {
    if (!(y instanceof Tensor)) throw invalidParameter("y", "a Tensor", y, "type");
    return new Tensor(wrapNative(() => this.handle.axpby(expectNumber(a, "a"), expectNumber(b, "b"), y.handle), "ERR_TORCHVID_SHAPE"));
  }
  sqrt(): Tensor {
    return new Tensor(wrapNative(() => this.handle.sqrt()));
  }
  abs(): Tensor {
    return new Tensor(wrapNative(() => this.handle.abs()));
  }
  round(): Tensor {
    return new Tensor(wrapNative(() => this.handle.round()));
  }
  /** Clamps to [min, max]; either bound may be omitted (null/undefined). */
  clamp(min?: number | null, max?: number | null): Tensor {
    const lo = min === undefined || min === null ? null : expectNumber(min, "min");
    const hi = max === undefined || max === null ? null : expectNumber(max, "max");
    if (lo === null && hi === null) throw new RangeError("clamp needs at least one of min and max");
    return new Tensor(wrapNative(() => this.handle.clamp(lo, hi)));
  }
  /** Clamps element-wise between two broadcastable tensors. */
  clampTensor(min: Tensor, max: Tensor): Tensor {
    if (!(min instanceof Tensor)) throw invalidParameter("min", "a Tensor", min, "type");
    if (!(max instanceof Tensor)) throw invalidParameter("max", "a Tensor", max, "type");
    return new Tensor(wrapNative(() => this.handle.clampTensor(min.handle, max.handle), "ERR_TORCHVID_SHAPE"));
  }
  /** The q-quantile along `dim` (torch.quantile, linear interpolation). */
  quantile(q: number, dim: number, keepdim = false): Tensor {
    const qq = expectNumber(q, "q");
    if (qq < 0 || qq > 1) throw new RangeError(`Expected q in [0, 1] but received ${qq}`);
    return new Tensor(wrapNative(() => this.handle.quantile(qq, expectInt(dim, "dim"), keepdim === true), "ERR_TORCHVID_SHAPE"));
  }
  /** Sum over `dim`, or over everything when dim is omitted. */
  sum(dim?: number, keepdim = false): Tensor {
    const d = dim === undefined ? null : expectInt(dim, "dim");
    return new Tensor(wrapNative(() => this.handle.sum(d, keepdim === true), "ERR_TORCHVID_SHAPE"));
  }

  /** Matrix product (torch.matmul semantics, batched and broadcast). */
  matmul(other: Tensor): Tensor {
    if (!(other instanceof Tensor)) throw invalidParameter("other", "a Tensor", other, "type");
    return new Tensor(wrapNative(() => this.handle.matmul(other.handle), "ERR_TORCHVID_SHAPE"));
  }

  // ---- structure ----------------------------------------------------------------------

  chunk(chunks: number, dim = 0): Tensor[] {
    const n = expectInt(chunks, "chunks", { min: 1 });
    return wrapNative(() => this.handle.chunk(n, expectInt(dim, "dim")), "ERR_TORCHVID_SHAPE").map((h) => new Tensor(h));
  }
  /** Elements start..end (exclusive) along `dim`; end defaults to the size of that dim. */
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    const d = expectInt(dim, "dim");
    const s = expectInt(start, "start");
    const e = end === undefined ? Number.MAX_SAFE_INTEGER : expectInt(end, "end");
    const st = expectInt(step, "step", { min: 1 });
    return new Tensor(wrapNative(() => this.handle.slice(d, s, e, st), "ERR_TORCHVID_SHAPE"));
  }
  permute(dims: readonly number[]): Tensor {
    const ds = expectIntArray(dims, "dims");
    return new Tensor(wrapNative(() => this.handle.permute(ds), "ERR_TORCHVID_SHAPE"));
  }
  /** Reshapes (one dim may be -1). */
  reshape(shape: readonly number[]): Tensor {
    const s = expectIntArray(shape, "shape", { min: -1 });
    return new Tensor(wrapNative(() => this.handle.reshape(s), "ERR_TORCHVID_SHAPE"));
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return new Tensor(
      wrapNative(() => this.handle.repeatInterleave(expectInt(repeats, "repeats", { min: 1 }), expectInt(dim, "dim")), "ERR_TORCHVID_SHAPE"),
    );
  }
  clone(): Tensor {
    return new Tensor(wrapNative(() => this.handle.clone()));
  }
  contiguous(): Tensor {
    return new Tensor(wrapNative(() => this.handle.contiguous()));
  }
  /** Casts to another dtype (a copy even when the dtype is the same). */
  to(dtype: DType): Tensor {
    const d = checkDType(dtype);
    return new Tensor(wrapNative(() => this.handle.to(d)));
  }
  /**
   * Copies to another device off the JS thread, in order with the work queued on both devices
   * (a turn on both at once, so copies in opposite directions cannot deadlock).
   */
  async toDevice(device: Device, options: { nonBlocking?: boolean } = {}): Promise<Tensor> {
    const d = checkDevice(device);
    const h = this.handle;
    const nonBlocking = options.nonBlocking === true;
    return new Tensor(await deviceQueue.run([h.device, d], () => wrapNative(() => h.toDevice(d, nonBlocking), "ERR_TORCHVID_DEVICE")));
  }
  /** Copies `src` into this tensor in place (same number of elements). */
  copyFrom(src: Tensor): void {
    if (!(src instanceof Tensor)) throw invalidParameter("src", "a Tensor", src, "type");
    wrapNative(() => this.handle.copyFrom(src.handle), "ERR_TORCHVID_SHAPE");
  }
  /**
   * this = a * this + b * y in place, with no new tensor (y broadcasts to this shape). The same
   * numbers as `axpby`, bit for bit. For scheduler updates on the latents a call owns.
   */
  axpbyInPlace(a: number, b: number, y: Tensor): void {
    if (!(y instanceof Tensor)) throw invalidParameter("y", "a Tensor", y, "type");
    const aa = expectNumber(a, "a");
    const bb = expectNumber(b, "b");
    wrapNative(() => this.handle.axpbyInPlace(aa, bb, y.handle), "ERR_TORCHVID_SHAPE");
  }
  /** this *= s, in place. */
  mulInPlace(s: number): void {
    const ss = expectNumber(s, "s");
    wrapNative(() => this.handle.mulInPlace(ss), "ERR_TORCHVID_DTYPE");
  }
  /** this += alpha * other, in place. */
  addInPlace(other: Tensor, alpha = 1): void {
    if (!(other instanceof Tensor)) throw invalidParameter("other", "a Tensor", other, "type");
    wrapNative(() => this.handle.addInPlace(other.handle, expectNumber(alpha, "alpha")), "ERR_TORCHVID_SHAPE");
  }

  // ---- reading back -------------------------------------------------------------------

  /**
   * Copies the values to the host off the JS thread, in order with the work queued on this
   * tensor's device. float16/bfloat16 come back as Float32Array, int64 as BigInt64Array, bool as
   * Uint8Array.
   */
  async data(): Promise<HostArray> {
    const h = this.handle;
    return deviceQueue.run(h.device, () => wrapNative(() => h.toArray()));
  }
  /**
   * A decoded video [B, 3, F, H, W] with values in [-1, 1] as host frames [B, F, H, W, 3]:
   * clamp((x + 1) / 2, 0, 1), as uint8 (x 255, rounded) or float. Computed off the JS thread, in
   * this tensor's device order; the same numbers as those ops through this class's methods.
   */
  async videoFrames(type: "uint8" | "float"): Promise<Uint8Array | Float32Array> {
    const kind = expectOneOf(type, "type", ["uint8", "float"]);
    if (this.shape.length !== 5) throw invalidParameter("this tensor", "a decoded video of shape [B, 3, F, H, W]", this.shape, "range");
    const h = this.handle;
    return deviceQueue.run(h.device, () => wrapNative(() => h.videoFrames(kind === "uint8"), "ERR_TORCHVID_DEVICE"));
  }

  /** Synchronous copy for small CPU tensors. */
  dataSync(): HostArray {
    return wrapNative(() => this.handle.toArraySync(), "ERR_TORCHVID_DEVICE");
  }
  /** Bytes held by this tensor's storage. */
  get nbytes(): number {
    return this.handle.nbytes;
  }

  dispose(): void {
    this.#h.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    if (this.#h.disposed) return "Tensor(disposed)";
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }
}

/** Disposes every tensor given (skipping undefined and already disposed ones). */
export function disposeAll(...tensors: (Tensor | undefined | null | readonly (Tensor | undefined | null)[])[]): void {
  for (const t of tensors) {
    if (Array.isArray(t)) disposeAll(...t);
    else if (t instanceof Tensor && !t.disposed) t.dispose();
  }
}
