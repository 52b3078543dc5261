/**
 * One order of work per device. Every piece of libtorch work that touches a device (loads,
 * forwards, host copies, moves, weight and attribute changes) takes a turn on that device's key;
 * a turn starts when every earlier turn on the key has settled and nothing else on the key starts
 * until it settles.
 *
 * Deadlock freedom: a job that needs several devices (a move cpu -> cuda) takes all its keys at
 * once, when it is queued, behind whatever was queued on each of them before. A job therefore only
 * ever waits for jobs queued before it, so no two jobs can wait on each other in a cycle (the
 * old code waited on the source's queue while holding the destination's, and two opposite moves
 * locked every queue).
 *
 * Turns are re-entrant: work queued from inside a job that already holds its keys (an `onDevice`
 * job that sets module attributes, say) runs at once instead of waiting for itself. Taking a NEW
 * device from inside a job (a move to cuda inside `onDevice("cpu", ...)`) waits behind that
 * device's earlier work, and can deadlock if that work waits for a device the job holds: take
 * every device a job needs in one call instead (`onDevice(["cpu", "cuda"], job)`).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { invalidParameter } from "./validate.ts";

/** "cuda" and "cuda:0" are one device. */
export function queueKey(device: string): string {
  return device === "cuda" ? "cuda:0" : device;
}

export class DeviceQueue {
  #tails = new Map<string, Promise<void>>();
  /** The keys the current async context holds a turn on. */
  #held = new AsyncLocalStorage<ReadonlySet<string>>();

  /** Runs `job` with a turn on every device in `devices` (one string or several). */
  run<T>(devices: string | readonly string[], job: () => T | Promise<T>): Promise<T> {
    const keys = [...new Set((typeof devices === "string" ? [devices] : devices).map(queueKey))];
    const mine = this.#held.getStore();
    const needed = mine === undefined ? keys : keys.filter((k) => !mine.has(k));
    if (needed.length === 0) return Promise.resolve().then(job);
    const store = new Set([...(mine ?? []), ...needed]);
    const previous = needed.map((k) => this.#tails.get(k)).filter((p): p is Promise<void> => p !== undefined);
    const start = previous.length === 0 ? Promise.resolve() : previous.length === 1 ? previous[0]! : Promise.all(previous);
    const next = start.then(() => this.#held.run(store, job));
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    for (const k of needed) this.#tails.set(k, tail);
    void tail.then(() => {
      for (const k of needed) if (this.#tails.get(k) === tail) this.#tails.delete(k);
    });
    return next;
  }

  /** Whether the current async context holds a turn on `device`. */
  holds(device: string): boolean {
    return this.#held.getStore()?.has(queueKey(device)) === true;
  }

  /** Keys with work queued or running (for tests and diagnostics). */
  busyKeys(): string[] {
    return [...this.#tails.keys()];
  }
}

/** The process-wide queue: all modules and tensors on one device share it. */
export const deviceQueue = new DeviceQueue();

/**
 * Runs `job` when every earlier piece of work for `device` has finished, and lets nothing else
 * for that device run until `job` settles. Use it for changes that must not race a forward
 * (LoRA fuse/unfuse, chunking attributes). Work queued on the same device from inside `job` runs
 * inside this turn. Several devices (an array) are taken at once.
 */
export function onDevice<T>(device: string | readonly string[], job: () => T | Promise<T>): Promise<T> {
  const devices = typeof device === "string" ? [device] : device;
  if (!Array.isArray(devices) || devices.length === 0) throw invalidParameter("device", `"cpu", "cuda", "cuda:N" or a non-empty array of them`, device, "type");
  for (const d of devices) {
    if (typeof d !== "string" || !/^(cpu|cuda(:\d+)?)$/.test(d)) throw invalidParameter("device", `"cpu", "cuda" or "cuda:N"`, d, typeof d === "string" ? "range" : "type");
  }
  if (typeof job !== "function") throw invalidParameter("job", "a function", job, "type");
  return deviceQueue.run(devices, job);
}
