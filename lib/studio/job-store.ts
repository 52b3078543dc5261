/**
 * Jobs in memory, mirrored to `<out>/<id>.json` beside each video so a restart keeps the gallery
 * and the queue. Writes are atomic (temp file + rename) and, per job, in order.
 */
import { readdirSync, readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isJobId } from "./paths.ts";
import type { Job, JobState } from "./job.ts";

const STATES: readonly JobState[] = ["queued", "running", "done", "failed", "cancelled"];

export class JobStore {
  readonly outDir: string;
  #jobs = new Map<string, Job>();
  #writes = new Map<string, Promise<void>>();

  constructor(outDir: string) {
    this.outDir = outDir;
  }

  /**
   * Reads every `<id>.json` in the folder. Jobs that were queued or running when the server
   * stopped come back as queued (returned in submission order, for the caller to queue again);
   * a done job whose video is gone comes back failed, saying so. Unreadable files are reported
   * through `warn` and left alone.
   */
  load(warn: (message: string) => void): Job[] {
    const names = new Set(readdirSync(this.outDir));
    const pending: Job[] = [];
    for (const name of names) {
      if (!name.endsWith(".json") || !isJobId(name.slice(0, -5))) continue;
      let job: Job;
      try {
        job = JSON.parse(readFileSync(join(this.outDir, name), "utf8")) as Job;
        if (job.id !== name.slice(0, -5) || !STATES.includes(job.state) || typeof job.settings !== "object" || job.settings === null) {
          throw new Error("not a torchvid studio job");
        }
      } catch (err) {
        warn(`Skipping ${join(this.outDir, name)}: ${(err as Error).message}`);
        continue;
      }
      if (job.state === "queued" || job.state === "running") {
        Object.assign(job, { state: "queued", step: 0, startedAt: undefined });
        pending.push(job);
      } else if (job.state === "done" && !names.has(`${job.id}.mp4`)) {
        Object.assign(job, { state: "failed", video: null, error: `The video file ${job.id}.mp4 is no longer in ${this.outDir}` });
      }
      this.#jobs.set(job.id, job);
    }
    return pending.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** Every job, newest first. */
  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  add(job: Job): Promise<void> {
    this.#jobs.set(job.id, job);
    return this.save(job);
  }

  /** Writes the job's JSON; resolves when this and every earlier write of the job are on disk. */
  save(job: Job): Promise<void> {
    const snapshot = `${JSON.stringify(job, null, 2)}\n`;
    const path = join(this.outDir, `${job.id}.json`);
    const previous = this.#writes.get(job.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      const tmp = join(this.outDir, `.${job.id}.json.tmp`);
      try {
        await writeFile(tmp, snapshot);
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    });
    const settled = next.catch(() => {});
    this.#writes.set(job.id, settled);
    void settled.then(() => {
      if (this.#writes.get(job.id) === settled) this.#writes.delete(job.id);
    });
    return next;
  }

  /** Resolves once every pending write is done (close, tests). */
  async flush(): Promise<void> {
    await Promise.all(this.#writes.values());
  }
}
