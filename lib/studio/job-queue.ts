/**
 * The device's queue: jobs run one after another (one device, one generation at a time), in
 * submission order. A queued job can be removed; the running one is stopped through its
 * AbortSignal. Knows nothing about pipelines: `work` does the job and must settle.
 */

export class QueueFullError extends Error {
  constructor(limit: number) {
    super(`The queue is full (${limit} jobs waiting or running): wait for some to finish or cancel some, then submit again`);
    this.name = "QueueFullError";
  }
}

export class JobQueue {
  readonly limit: number;
  #waiting: string[] = [];
  #running: { id: string; controller: AbortController; done: Promise<void> } | null = null;
  #work: (id: string, signal: AbortSignal) => Promise<void>;
  #onChange: () => void;

  /** `onChange` runs whenever positions may have moved (submit, start, finish, cancel). */
  constructor(work: (id: string, signal: AbortSignal) => Promise<void>, options: { limit: number; onChange: () => void }) {
    this.#work = work;
    this.limit = options.limit;
    this.#onChange = options.onChange;
  }

  /** Jobs waiting or running. */
  get size(): number {
    return this.#waiting.length + (this.#running ? 1 : 0);
  }

  get runningId(): string | null {
    return this.#running?.id ?? null;
  }

  /** Waiting ids, next first. */
  get waiting(): readonly string[] {
    return this.#waiting;
  }

  /** 0 for the running job, 1 for the next one, ...; null when not in the queue. */
  position(id: string): number | null {
    if (this.#running?.id === id) return 0;
    const i = this.#waiting.indexOf(id);
    return i < 0 ? null : i + 1;
  }

  /** Queues `id`; throws QueueFullError when `limit` jobs are already waiting or running (unless `force`). */
  push(id: string, options: { force?: boolean } = {}): void {
    if (!options.force && this.size >= this.limit) throw new QueueFullError(this.limit);
    this.#waiting.push(id);
    this.#onChange();
    queueMicrotask(() => this.#pump());
  }

  /** "removed" (it was waiting), "aborting" (it is running: its signal fired), or null (not queued). */
  cancel(id: string): "removed" | "aborting" | null {
    if (this.#running?.id === id) {
      this.#running.controller.abort(new Error("Cancelled"));
      return "aborting";
    }
    const i = this.#waiting.indexOf(id);
    if (i < 0) return null;
    this.#waiting.splice(i, 1);
    this.#onChange();
    return "removed";
  }

  /** Stops taking jobs, aborts the running one and waits for it to settle. Waiting jobs stay where they are (on disk). */
  async stop(): Promise<void> {
    this.#stopped = true;
    const running = this.#running;
    if (running) {
      running.controller.abort(new Error("The server is stopping"));
      await running.done;
    }
  }
  #stopped = false;

  #pump(): void {
    if (this.#running || this.#stopped) return;
    const id = this.#waiting.shift();
    if (id === undefined) return;
    const controller = new AbortController();
    const done = this.#work(id, controller.signal)
      .catch(() => {
        // `work` reports its own failures; a rejection here must not stop the queue.
      })
      .finally(() => {
        this.#running = null;
        this.#onChange();
        this.#pump();
      });
    this.#running = { id, controller, done };
    this.#onChange();
  }
}
