/**
 * Atomic writes: everything is written to a hidden temp file (or folder) next to the target and
 * renamed into place at the end, so a failed or aborted export leaves nothing half-done.
 */

import { randomBytes } from "node:crypto";
import { closeSync, openSync, rmSync, statSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { AbortError, TorchvidError } from "../errors.ts";

/** Temp files / folders being written; removed if the process exits before they are renamed. */
const inFlight = new Set<string>();
let exitHookInstalled = false;

/** Tracks `tmp` until `untrack(tmp)`; a process that exits meanwhile (second Ctrl-C) removes it. */
export function track(tmp: string): void {
  inFlight.add(tmp);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const path of inFlight) rmSync(path, { recursive: true, force: true });
    });
  }
}

export function untrack(tmp: string): void {
  inFlight.delete(tmp);
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EROFS") return "read-only file system";
  if (code === "ENOSPC") return "no space left on device";
  if (code === "ENOTDIR") return "a part of the path is a file, not a folder";
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks that `path` can be written (its folder exists and is writable, it is not a folder)
 * without leaving anything behind. Throws a one-line TorchvidError (ERR_TORCHVID_VIDEO) otherwise.
 */
export function assertWritable(path: string, kind: "file" | "folder" = "file"): void {
  const abs = resolve(path);
  const dir = dirname(abs);
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: ${code === "ENOENT" ? `folder ${dir} does not exist` : reason(err)}`, { cause: err });
  }
  if (!dirStat.isDirectory()) throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: ${dir} is not a folder`);
  try {
    const st = statSync(abs);
    if (kind === "file" && st.isDirectory()) throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: it is an existing folder`);
    if (kind === "folder" && !st.isDirectory()) throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write frames to ${path}: it is an existing file`);
  } catch (err) {
    if (err instanceof TorchvidError) throw err;
  }
  // access(W_OK) lies for root on read-only mounts and ignores ACL quirks: really create a file.
  const probe = join(dir, `.${basename(abs)}.${randomBytes(4).toString("hex")}.probe`);
  try {
    closeSync(openSync(probe, "wx"));
  } catch (err) {
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: ${reason(err)}`, { cause: err });
  }
  rmSync(probe, { force: true });
}

/** A temp path next to `path`, reserved (created empty) so nothing else takes it. */
export function reserveTemp(path: string): string {
  assertWritable(path);
  const abs = resolve(path);
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    closeSync(openSync(tmp, "wx"));
  } catch (err) {
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: ${reason(err)}`, { cause: err });
  }
  track(tmp);
  return tmp;
}

/** A temp folder path next to `path` (not created). */
export function tempSibling(path: string, suffix = "tmp"): string {
  const abs = resolve(path);
  return join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.${suffix}`);
}

/**
 * Runs `write(tmp)` then renames tmp onto `path`; removes tmp if anything fails or `signal` fires.
 */
export async function writeAtomically(path: string, signal: AbortSignal | undefined, write: (tmp: string) => Promise<void>): Promise<void> {
  throwIfAborted(signal, path);
  const tmp = reserveTemp(path);
  try {
    await write(tmp);
    throwIfAborted(signal, path);
    await rename(tmp, resolve(path));
    untrack(tmp);
  } catch (err) {
    await rm(tmp, { force: true, recursive: true });
    untrack(tmp);
    if (err instanceof TorchvidError || err instanceof TypeError || err instanceof RangeError) throw err;
    throw new TorchvidError("ERR_TORCHVID_VIDEO", `Cannot write ${path}: ${reason(err)}`, { cause: err });
  }
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(`Writing ${what} was aborted`, { cause: signal.reason });
}
