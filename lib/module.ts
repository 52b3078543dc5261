/**
 * TorchScript modules loaded by the addon. Loads, forwards and moves run off the JS thread;
 * work for one device is queued (one at a time per device), so concurrent calls from JS are safe.
 */
import { native } from "./native.ts";
import type { DType, NativeModule, NativeParameterInfo, NativeValue } from "./native-types.ts";
import { Tensor, checkDType, checkDevice, type Device } from "./tensor.ts";
import { TorchvidError, wrapNative } from "./errors.ts";
import { expectString, invalidParameter } from "./validate.ts";

/** Values a module takes and returns. */
export type ModuleValue = Tensor | number | boolean | null | ModuleValue[];

/** "cuda" and "cuda:0" are one device. */
function queueKey(device: string): string {
  return device === "cuda" ? "cuda:0" : device;
}

/** Serialises async work per device: each job starts when the previous one settled. */
class DeviceQueue {
  #tails = new Map<string, Promise<unknown>>();

  run<T>(device: string, job: () => Promise<T>): Promise<T> {
    const key = queueKey(device);
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(job, job);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}

/** The process-wide queue: all modules on one device share it. */
export const deviceQueue = new DeviceQueue();

function toNativeValue(value: ModuleValue, name: string): NativeValue {
  if (value instanceof Tensor) return value.handle;
  if (Array.isArray(value)) return value.map((v, i) => toNativeValue(v, `${name}[${i}]`));
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  throw invalidParameter(name, "a Tensor, number, boolean, null or an array of them", value);
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

export class TorchModule {
  /** @internal */
  readonly #m: NativeModule;

  private constructor(handle: NativeModule) {
    this.#m = handle;
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
    expectString(method, "method");
    if (!Array.isArray(inputs)) throw invalidParameter("inputs", "an array", inputs);
    const handle = this.#handle;
    const args = inputs.map((v, i) => toNativeValue(v, `inputs[${i}]`));
    const out = await deviceQueue.run(handle.device, () => wrapNative(() => handle.run(method, args), "ERR_TORCHVID_FORWARD"));
    return fromNativeValue(out);
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

  /** Moves weights to `device` (and casts to `dtype`), off the JS thread. Used for CPU offload. */
  async to(device: Device, dtype?: DType): Promise<void> {
    const d = checkDevice(device);
    const t = dtype === undefined ? null : checkDType(dtype);
    const handle = this.#handle;
    const move = () => wrapNative(() => handle.to(d, t), "ERR_TORCHVID_DEVICE");
    const from = queueKey(handle.device);
    // Wait for work queued on the source device, then take a turn on the destination's queue.
    if (from === queueKey(d)) await deviceQueue.run(d, move);
    else await deviceQueue.run(from, () => deviceQueue.run(d, move));
  }

  /** Reads an attribute; `path` is a dotted submodule path ("" for the root). */
  getAttr(path: string, name: string): ModuleValue {
    return fromNativeValue(wrapNative(() => this.#handle.getAttr(expectString(path, "path"), expectString(name, "name"))));
  }
  setAttr(path: string, name: string, value: number | boolean): void {
    if (typeof value !== "number" && typeof value !== "boolean") throw invalidParameter("value", "a number or boolean", value);
    wrapNative(() => this.#handle.setAttr(expectString(path, "path"), expectString(name, "name"), value));
  }
  /** Sets `name` on every submodule that declares it; returns how many were set. */
  setAttrAll(name: string, value: number | boolean): number {
    if (typeof value !== "number" && typeof value !== "boolean") throw invalidParameter("value", "a number or boolean", value);
    return wrapNative(() => this.#handle.setAttrAll(expectString(name, "name"), value));
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
