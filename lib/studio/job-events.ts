/**
 * Per-job event fan-out for the SSE streams: `state` (the job, on every state change, the last
 * one final), `position`, `step` and `preview`. Subscribers get events in the order emitted.
 */

export type JobEventName = "state" | "position" | "step" | "preview";

export interface JobEvent {
  event: JobEventName;
  data: unknown;
}

type Listener = (event: JobEvent) => void;

export class JobEvents {
  #listeners = new Map<string, Set<Listener>>();

  subscribe(id: string, listener: Listener): () => void {
    let set = this.#listeners.get(id);
    if (!set) this.#listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(id) === set) this.#listeners.delete(id);
    };
  }

  emit(id: string, event: JobEventName, data: unknown): void {
    for (const listener of [...(this.#listeners.get(id) ?? [])]) {
      try {
        listener({ event, data });
      } catch {
        // One broken stream must not stop the others.
      }
    }
  }

  /** Open subscriptions (tests check that closed streams leave nothing behind). */
  get size(): number {
    let n = 0;
    for (const set of this.#listeners.values()) n += set.size;
    return n;
  }
}
