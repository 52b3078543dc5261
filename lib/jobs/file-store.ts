/**
 * The filesystem ResultStore: `<dir>/<job id>.mp4` and `<dir>/<job id>.json`, each written to a
 * hidden temp file in `<dir>` and renamed into place (atomic on one filesystem, NFS included).
 * The sidecar goes first and the video last, so a reader that sees `<id>.mp4` also finds its
 * sidecar. With several machines, `<dir>` is a shared mount.
 */
import { copyFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { TorchvidError } from "../errors.ts";
import { assertWritable, writeAtomically } from "../video/atomic.ts";
import type { JobSidecar, ResultStore, StoredResult } from "./result-store.ts";

/** Job ids become file names: keep them to characters every filesystem and shell take as they are. */
export function checkJobIdForFile(jobId: string): string {
  // No "." either: the temp-file sweep matches on `.<id>.mp4.` and must not catch another id's files.
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$/.test(jobId)) {
    throw new RangeError(`Job id ${JSON.stringify(jobId)} cannot be a file name: use letters, digits, "_" and "-" (up to 200, starting with a letter or digit)`);
  }
  return jobId;
}

export class FileResultStore implements ResultStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get location(): string {
    return this.dir;
  }

  videoPath(jobId: string): string {
    return join(this.dir, `${checkJobIdForFile(jobId)}.mp4`);
  }

  sidecarPath(jobId: string): string {
    return join(this.dir, `${checkJobIdForFile(jobId)}.json`);
  }

  async check(): Promise<void> {
    let isDir = false;
    try {
      isDir = (await stat(this.dir)).isDirectory();
    } catch {}
    if (!isDir) throw new TorchvidError("ERR_TORCHVID_VIDEO", `Output folder ${this.dir} does not exist: create it (mkdir -p ${this.dir}) or pass another --out`);
    assertWritable(join(this.dir, "probe.mp4"));
  }

  async put(jobId: string, videoFile: string, sidecar: JobSidecar): Promise<StoredResult> {
    const video = this.videoPath(jobId);
    const json = this.sidecarPath(jobId);
    await writeAtomically(json, undefined, (tmp) => writeFile(tmp, `${JSON.stringify(sidecar, null, 2)}\n`));
    // A copy, not a rename: the scratch file is usually on another filesystem than a shared --out.
    await writeAtomically(video, undefined, (tmp) => copyFile(videoFile, tmp));
    await rm(videoFile, { force: true });
    await this.sweep(jobId);
    return { jobId, video, sidecar: json };
  }

  async get(jobId: string): Promise<StoredResult | undefined> {
    const video = this.videoPath(jobId);
    try {
      await stat(video);
    } catch {
      return undefined;
    }
    return { jobId, video, sidecar: this.sidecarPath(jobId) };
  }

  /**
   * Removes temp files an earlier attempt of `jobId` left when its worker was killed mid-write
   * (a SIGKILL runs no cleanup). Called once the result is in place, so nothing in flight for
   * this job can still need them.
   */
  private async sweep(jobId: string): Promise<void> {
    const prefixes = [`.${jobId}.mp4.`, `.${jobId}.json.`];
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.endsWith(".tmp") && prefixes.some((p) => name.startsWith(p))) await rm(join(this.dir, name), { force: true });
    }
  }
}
