/**
 * What every command shares: exit codes, usage errors, one-line error printing, package paths.
 */

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OOM_HINT } from "../models/forward-errors.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, what shells expect after Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/** A mistake in the command line: printed in one line with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The package root (the folder holding package.json), from lib/cli/ or dist/cli/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** The model folder used when `--model` is not given. */
export function defaultModelDir(): string {
  return join(packageRoot(), "models", "tiny");
}

/** Options every command has. */
export interface GlobalArgs {
  verbose?: boolean;
  json?: boolean;
}

export function isAbort(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === "ERR_TORCHVID_ABORTED" || code === "ABORT_ERR" || err.name === "AbortError";
}

/** Maps an error to its exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (isAbort(err)) return EXIT_INTERRUPTED;
  return EXIT_FAILURE;
}

/** One line (or the stack with --verbose) on stderr, plus an `error` event with --json. */
export function reportError(err: unknown, args: GlobalArgs, command?: string): number {
  const code = exitCodeFor(err);
  // Something thrown that is not an Error (a string, say) is reported by its text.
  const e: { message: string; stack?: string; cause?: unknown } = err instanceof Error ? err : { message: String(err) };
  const errCode = (e as { code?: unknown }).code;
  if (errCode === "ERR_TORCHVID_OOM") e.message = withCliMemoryHint(e.message);
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ event: "error", exitCode: code, code: typeof errCode === "string" ? errCode : undefined, message: e.message })}\n`);
  }
  let line: string;
  if (code === EXIT_INTERRUPTED) line = "torchvid: interrupted; nothing was written";
  else if (code === EXIT_USAGE) line = `torchvid: ${e.message.replace(/\s*\n\s*/g, " ").trim()}`;
  else line = `torchvid: ${e.message.split("\n")[0]}`;
  if (code === EXIT_USAGE) line += `\nRun \`torchvid ${command ? `${command} ` : ""}--help\` for usage.`;
  if (args.verbose && code !== EXIT_USAGE) {
    line = `${e.stack ?? line}`;
    if (e.cause instanceof Error) line += `\nCaused by: ${e.cause.stack ?? e.cause.message}`;
  } else if (code === EXIT_FAILURE) line += " (--verbose for details)";
  process.stderr.write(`${line}\n`);
  return code;
}

/** The CLI flags that cut memory, for out-of-memory errors (the library's message names its methods). */
export const CLI_MEMORY_HINT = "To fit it: --cpu-offload (GPU), --vae-slicing, --chunk-size 1, fewer --frames or a smaller --width/--height";

function withCliMemoryHint(message: string): string {
  const stripped = message.replace(OOM_HINT, "").replace(/\s*\(free memory with [^)]*\)/, "").trim();
  return `${stripped.replace(/[.:]?$/, ".")} ${CLI_MEMORY_HINT}`;
}

/** Parses `FILE[:scale]` (the scale after the last colon, when it is a number). */
export function parseLora(value: string): { path: string; scale: number } {
  const m = /^(.*):(-?\d+(?:\.\d+)?|-?\.\d+)$/.exec(value);
  if (m && m[1]) return { path: m[1], scale: Number(m[2]) };
  if (!value) throw new UsageError("--lora needs a file, as FILE or FILE:SCALE");
  return { path: value, scale: 1 };
}

/** Parses a seed: a non-negative integer, as a number up to 2^53 - 1 or a BigInt beyond. */
export function parseSeed(value: unknown): number | bigint | undefined {
  if (value === undefined) return undefined;
  const s = String(value).trim();
  if (!/^\d+$/.test(s)) throw new UsageError(`--seed must be a non-negative integer, got ${describeArg(value)}`);
  const big = BigInt(s);
  if (big > 0xffffffffffffffffn) throw new UsageError(`--seed must be below 2^64, got ${s}`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** A random seed that fits in a JS number, so it can be printed and passed back. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

export function checkInt(value: unknown, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`--${flag} must be an integer ${range}, got ${describeArg(value)}`);
  }
  return value;
}

export function checkNumber(value: unknown, flag: string, min: number, max = Infinity): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`--${flag} must be a number ${max === Infinity ? `>= ${min}` : `between ${min} and ${max}`}, got ${describeArg(value)}`);
  }
  return value;
}

function describeArg(value: unknown): string {
  if (typeof value === "number") return Number.isNaN(value) ? "something that is not a number" : String(value);
  return value === undefined ? "nothing" : JSON.stringify(value);
}
