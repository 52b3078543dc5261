/**
 * `onDevice` for the model and pipeline code. Until lib/module.ts exports it (issue 10's contract
 * with the native side), it is the device queue's own turn, which has the same meaning.
 */
import { deviceQueue } from "../module.ts";

export function onDevice<T>(device: string, job: () => T | Promise<T>): Promise<T> {
  return deviceQueue.run(device, async () => job());
}
