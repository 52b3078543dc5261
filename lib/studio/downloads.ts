/**
 * Results in other formats, made on first request from the job's mp4 and kept beside it:
 * `<id>.webm` (VP9) and `<id>.gif`. Two requests for the same file share one conversion.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { exportVideo, readVideo } from "../index.ts";

export const DOWNLOAD_FORMATS = ["mp4", "webm", "gif"] as const;

export class Downloads {
  readonly outDir: string;
  #pending = new Map<string, Promise<void>>();

  constructor(outDir: string) {
    this.outDir = outDir;
  }

  /**
   * Makes sure `name` exists when it is the webm/gif twin of an existing `<base>.mp4`; resolves
   * false when there is nothing to make it from.
   */
  async ensure(name: string): Promise<boolean> {
    const path = join(this.outDir, name);
    if (existsSync(path)) return true;
    const m = /^(.+)\.(webm|gif)$/.exec(name);
    if (!m) return false;
    const mp4 = join(this.outDir, `${m[1]}.mp4`);
    if (!existsSync(mp4)) return false;
    let job = this.#pending.get(name);
    if (!job) {
      job = (async () => {
        const video = await readVideo(mp4);
        await exportVideo(video, path, { fps: video.fps });
      })().finally(() => this.#pending.delete(name));
      this.#pending.set(name, job);
    }
    await job;
    return true;
  }
}
