/**
 * Finding and running ffmpeg. Order: `TORCHVID_FFMPEG`, the static binary of
 * `@ffmpeg-installer/ffmpeg`, then an `ffmpeg` on PATH.
 */

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join } from "node:path";
import { AbortError, TorchvidError } from "../errors.ts";

export interface FfmpegLocation {
  path: string;
  /** Where it came from. */
  source: "TORCHVID_FFMPEG" | "@ffmpeg-installer/ffmpeg" | "PATH";
}

let cached: FfmpegLocation | undefined;

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the ffmpeg binary is; throws a TorchvidError (ERR_TORCHVID_VIDEO) saying what to do if none. */
export function findFfmpeg(): FfmpegLocation {
  const fromEnv = process.env.TORCHVID_FFMPEG;
  if (fromEnv) {
    // An explicit choice that does not work is an error, not a reason to pick another binary.
    if (!isExecutable(fromEnv)) throw new TorchvidError("ERR_TORCHVID_VIDEO", `TORCHVID_FFMPEG is set to ${fromEnv}, which is not an executable file`);
    return { path: fromEnv, source: "TORCHVID_FFMPEG" };
  }
  if (cached) return cached;
  const tried: string[] = [];
  try {
    const require = createRequire(import.meta.url);
    const installer = require("@ffmpeg-installer/ffmpeg") as { path: string };
    if (isExecutable(installer.path)) return (cached = { path: installer.path, source: "@ffmpeg-installer/ffmpeg" });
    tried.push(`@ffmpeg-installer/ffmpeg (${installer.path} is not executable)`);
  } catch (err) {
    // The package throws a plain string on an unsupported platform.
    tried.push(`@ffmpeg-installer/ffmpeg (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`);
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, process.platform === "win32" ? "ffmpeg.exe" : "ffmpeg");
    if (isExecutable(candidate)) return (cached = { path: candidate, source: "PATH" });
  }
  tried.push("ffmpeg on PATH (not found)");
  throw new TorchvidError(
    "ERR_TORCHVID_VIDEO",
    `No ffmpeg found: tried ${tried.join(", ")}. Install one (e.g. \`apt-get install ffmpeg\`) or set TORCHVID_FFMPEG to its path`,
  );
}

export interface FfmpegRun {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with ffmpeg's stderr when it exits with 0; rejects otherwise (AbortError when aborted). */
  done: Promise<string>;
}

/** The last line of ffmpeg's stderr that reads like an error, for one-line messages. */
export function ffmpegErrorLine(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const hint = [...lines].reverse().find((l) => /error|invalid|no such|not |unable|could not|cannot|unsupported|failed|denied/i.test(l));
  return hint ?? lines.at(-1) ?? "no output";
}

/**
 * Spawns ffmpeg with `args` (prefixed with `-hide_banner -nostdin`-like quiet flags by the caller).
 * Kills it on abort. Keeps at most the last 256 KiB of stderr.
 */
export function runFfmpeg(args: string[], options: { signal?: AbortSignal; what: string } ): FfmpegRun {
  const { path } = findFfmpeg();
  const { signal, what } = options;
  if (signal?.aborted) throw new AbortError(`${what} aborted`, { cause: signal.reason });
  const child = spawn(path, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 512 * 1024) stderr = stderr.slice(-256 * 1024);
  });
  // EPIPE when ffmpeg exits before reading everything: the exit code tells the story.
  child.stdin.on("error", () => {});
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    child.kill("SIGKILL");
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const done = new Promise<string>((resolve, reject) => {
    child.on("error", (err) => {
      signal?.removeEventListener("abort", onAbort);
      reject(new TorchvidError("ERR_TORCHVID_VIDEO", `${what}: could not run ffmpeg (${path}): ${err.message}`, { cause: err }));
    });
    child.on("close", (code, sig) => {
      signal?.removeEventListener("abort", onAbort);
      if (aborted) return reject(new AbortError(`${what} aborted`, { cause: signal?.reason }));
      if (code === 0) return resolve(stderr);
      const err = new TorchvidError("ERR_TORCHVID_VIDEO", `${what}: ffmpeg failed (${code !== null ? `exit code ${code}` : `signal ${sig}`}): ${ffmpegErrorLine(stderr)}`);
      (err as TorchvidError & { stderr?: string }).stderr = stderr;
      reject(err);
    });
  });
  // Callers attach their own handlers; never leave this one unhandled if they bail out early.
  done.catch(() => {});
  return { child, done };
}

/** Writes `chunk` to ffmpeg's stdin and waits until it is taken (backpressure). */
export function writeChunk(child: ChildProcessWithoutNullStreams, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdin.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
