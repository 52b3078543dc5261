/**
 * TorchScript modules loaded by the addon. Loads, forwards and moves run off the JS thread;
 * every change to a module (forward, move, attribute) takes a turn on its device's queue
 * (lib/device-queue.ts), so concurrent calls from JS never race each other.
 */
import { native } from "./native.ts";
import type { DType, NativeModule, NativeParameterInfo, NativeValue } from "./native-types.ts";
import { Tensor, checkDType, checkDevice, type Device } from "./tensor.ts";
import { TorchvidError, wrapNative } from "./errors.ts";
import { deviceQueue, queueKey } from "./device-queue.ts";
import { expectInt, expectNumber, expectString, invalidParameter } from "./validate.ts";

/** Values a module takes and returns. */
export type ModuleValue = Tensor | number | boolean | null | ModuleValue[];

export { deviceQueue, onDevice } from "./device-queue.ts";

function toNativeValue(value: ModuleValue, name: string): NativeValue {
  if (value instanceof Tensor) return value.handle;
  if (Array.isArray(value)) return value.map((v, i) => toNativeValue(v, `${name}[${i}]`));
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  throw invalidParameter(name, "a Tensor, number, boolean, null or an array of them", value, "type");
}

function fromNativeValue(value: NativeValue): ModuleValue {
  if (Array.isArray(value)) return value.map(fromNativeValue);
  if (value !== null && typeof value === "object") return new Tensor(value);
  return value;
}

export interface LoadModuleOptions {
  /** Where the weights live. Defaults to "cpu". */
  device?: Device;
  /** Cast floating-point weights to this dtype at load. Defaults to the file's own dtype. */
  dtype?: DType;
}

/** Checks a method name and module inputs (run and runGuided) and converts the inputs for the addon. */
function nativeInputs(method: string, inputs: ModuleValue[]): NativeValue[] {
  expectString(method, "method");
  if (!Array.isArray(inputs)) throw invalidParameter("inputs", "an array", inputs, "type");
  return inputs.map((v, i) => toNativeValue(v, `inputs[${i}]`));
}

export class TorchModule {
  /** @internal */
  readonly #m: NativeModule;
  /** The device after every move queued so far: new work queues there. */
  #device: string;
  /** Moves queued and not yet settled. */
  #moves = 0;

  private constructor(handle: NativeModule) {
    this.#m = handle;
    this.#device = handle.device;
  }

  /** Loads a TorchScript file (as written by `torchvid convert`). */
  static async load(path: string, options: LoadModuleOptions = {}): Promise<TorchModule> {
    expectString(path, "path");
    const device = options.device === undefined ? "cpu" : checkDevice(options.device);
    const dtype = options.dtype === undefined ? null : checkDType(options.dtype);
    const handle = await deviceQueue.run(device, () => wrapNative(() => native().Module.load(path, device, dtype), "ERR_TORCHVID_MODEL_LOAD"));
    return new TorchModule(handle);
  }

  get #handle(): NativeModule {
    if (this.#m.disposed) throw new TorchvidError("ERR_TORCHVID_DISPOSED", "This module was disposed: load it again");
    return this.#m;
  }

  get device(): string {
    return this.#handle.device;
  }
  get dtype(): DType {
    return this.#handle.dtype;
  }
  get path(): string {
    return this.#handle.path;
  }
  /** Bytes of weights and buffers. */
  get nbytes(): number {
    return this.#handle.nbytes;
  }
  get disposed(): boolean {
    return this.#m.disposed;
  }

  /** Runs `forward` (or another exported method) off the JS thread. */
  async forward(...inputs: ModuleValue[]): Promise<ModuleValue> {
    return this.run("forward", inputs);
  }

  async run(method: string, inputs: ModuleValue[]): Promise<ModuleValue> {
    const args = nativeInputs(method, inputs);
    const handle = this.#handle;
    const out = await deviceQueue.run(this.#device, () => wrapNative(() => handle.run(method, args), "ERR_TORCHVID_FORWARD"));
    return fromNativeValue(out);
  }

  /**
   * One forward with classifier-free guidance around it (see UNet3DConditionModel.forwardGuided):
   * `inputs[doubled]` goes in twice along the batch (uncond half first) and the prediction comes
   * back as uncond + guidanceScale * (text - uncond), computed on the device thread right after the
   * forward. `doubled` = -1: no guidance, a plain forward that must return one tensor.
   * `forwardMs` is the forward's own time on the device thread.
   */
  async runGuided(method: string, inputs: ModuleValue[], doubled: number, guidanceScale: number): Promise<{ prediction: Tensor; forwardMs: number }> {
    const args = nativeInputs(method, inputs);
    const index = expectInt(doubled, "doubled", { min: -1, max: inputs.length - 1 });
    const scale = expectNumber(guidanceScale, "guidanceScale");
    const handle = this.#handle;
    const out = await deviceQueue.run(this.#device, () => wrapNative(() => handle.runGuided(method, args, index, scale), "ERR_TORCHVID_FORWARD"));
    return { prediction: new Tensor(out.prediction), forwardMs: out.forwardMs };
  }

  /** Like forward, for modules that return one tensor. */
  async forwardTensor(...inputs: ModuleValue[]): Promise<Tensor> {
    const out = await this.forward(...inputs);
    if (!(out instanceof Tensor)) throw new TorchvidError("ERR_TORCHVID_FORWARD", `${this.path} returned ${Array.isArray(out) ? "a tuple" : typeof out}, expected one tensor`);
    return out;
  }

  hasMethod(name: string): boolean {
    return this.#handle.hasMethod(expectString(name, "name"));
  }

  /**
   * Moves weights to `device` (and casts to `dtype`), off the JS thread. Used for CPU offload.
   * Takes a turn on both devices at once (see lib/device-queue.ts), so opposite moves never
   * deadlock. A failed move (out of memory) leaves the module whole on its old device.
   */
  async to(device: Device, dtype?: DType): Promise<void> {
    const d = checkDevice(device);
    const t = dtype === undefined ? null : checkDType(dtype);
    const handle = this.#handle;
    const from = this.#device;
    this.#device = queueKey(d) === queueKey(from) ? from : d;
    this.#moves++;
    try {
      await deviceQueue.run([from, d], () => wrapNative(() => handle.to(d, t), "ERR_TORCHVID_DEVICE"));
    } finally {
      // After the last queued move (or a failed one, which the addon rolled back) the native
      // module's own device is the truth.
      if (--this.#moves === 0 && !handle.disposed) this.#device = handle.device;
    }
  }

  /** Reads an attribute; `path` is a dotted submodule path ("" for the root). */
  getAttr(path: string, name: string): ModuleValue {
    return fromNativeValue(wrapNative(() => this.#handle.getAttr(expectString(path, "path"), expectString(name, "name"))));
  }
  /** Sets an int/float/bool attribute, in order with the forwards queued on the module's device. */
  async setAttr(path: string, name: string, value: number | boolean): Promise<void> {
    if (typeof value !== "number" && typeof value !== "boolean") throw invalidParameter("value", "a number or boolean", value, "type");
    const handle = this.#handle;
    const p = expectString(path, "path");
    const n = expectString(name, "name");
    await deviceQueue.run(this.#device, () => wrapNative(() => handle.setAttr(p, n, value)));
  }
  /**
   * Sets `name` on every submodule that declares it, in order with the forwards queued on the
   * module's device; resolves to how many were set.
   */
  async setAttrAll(name: string, value: number | boolean): Promise<number> {
    if (typeof value !== "number" && typeof value !== "boolean") throw invalidParameter("value", "a number or boolean", value, "type");
    const handle = this.#handle;
    const n = expectString(name, "name");
    return deviceQueue.run(this.#device, () => wrapNative(() => handle.setAttrAll(n, value)));
  }

  namedParameters(): NativeParameterInfo[] {
    return this.#handle.namedParameters();
  }
  /** A handle aliasing the parameter's storage: in-place edits change the module. */
  parameter(name: string): Tensor {
    return new Tensor(wrapNative(() => this.#handle.parameter(expectString(name, "name"))));
  }

  dispose(): void {
    if (!this.#m.disposed) this.#m.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
