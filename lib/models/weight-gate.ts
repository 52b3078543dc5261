/**
 * A reader/writer gate over one set of loaded weights (the modules a pipeline and the pipelines
 * made from it with `fromPipe` share). A `generate()` call holds a read turn from its start to
 * its end; a weight change (LoRA fuse/unfuse, forward chunking, dispose) takes a write turn.
 *
 * Turns are granted strictly in the order they were asked for, and a turn is asked for
 * synchronously, when the public method is called. So a weight change waits for the calls that
 * started before it and every call that starts after it sees it: a running generation never sees
 * its weights change half way, whatever the caller awaits or not. Reads asked for one after
 * another with no write between them run together (calls overlap; their forwards still take
 * turns on the device queue).
 */

type Waiter = { kind: "read" | "write"; grant: () => void };

export class WeightGate {
  #readers = 0;
  #writing = false;
  #queue: Waiter[] = [];

  /** Asks for a read turn now; resolves with the function that ends it (call it exactly once). */
  read(): Promise<() => void> {
    return new Promise((resolve) => {
      this.#queue.push({ kind: "read", grant: () => resolve(this.#releaser("read")) });
      this.#pump();
    });
  }

  /** Asks for a write turn now and runs `job` alone once every earlier turn has ended. */
  write<T>(job: () => T | Promise<T>): Promise<T> {
    return new Promise<() => void>((resolve) => {
      this.#queue.push({ kind: "write", grant: () => resolve(this.#releaser("write")) });
      this.#pump();
    }).then(async (release) => {
      try {
        return await job();
      } finally {
        release();
      }
    });
  }

  /** Turns running or waiting (for tests and diagnostics). */
  get pending(): { readers: number; writing: boolean; waiting: number } {
    return { readers: this.#readers, writing: this.#writing, waiting: this.#queue.length };
  }

  #releaser(kind: "read" | "write"): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (kind === "read") this.#readers--;
      else this.#writing = false;
      this.#pump();
    };
  }

  #pump(): void {
    while (this.#queue.length > 0 && !this.#writing) {
      const head = this.#queue[0];
      if (head.kind === "write" && this.#readers > 0) return;
      this.#queue.shift();
      if (head.kind === "read") this.#readers++;
      else this.#writing = true;
      head.grant();
    }
  }
}
