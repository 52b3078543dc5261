/**
 * A lock between processes (proper-lockfile: an atomic mkdir of `<path>.lock`, kept fresh while
 * held, taken over when its owner died and left it stale). Two torchvid processes that want the
 * same download or conversion: one works, the other waits here and then finds the result.
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";

// A holder refreshes the lock every STALE_MS / 2; one silent for STALE_MS is presumed dead.
const STALE_MS = 60_000;
const POLL_MS = 300;

/** Runs `fn` holding the lock on `path`; calls `onWait` once if another process holds it first. */
export async function withLock<T>(path: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const options = { realpath: false, stale: STALE_MS };
  if (onWait && (await lockfile.check(path, options).catch(() => false))) onWait();
  const release = await lockfile.lock(path, {
    ...options,
    retries: { retries: Math.ceil((24 * 3600 * 1000) / POLL_MS), factor: 1, minTimeout: POLL_MS, maxTimeout: POLL_MS },
    // The default throws from a timer (a crash); losing the lock only costs duplicated work.
    onCompromised: () => {},
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
