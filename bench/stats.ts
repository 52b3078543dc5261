/** Timing helpers shared by the benchmarks: sample, summarise (median / p10 / p90), format. */
import { execFileSync } from "node:child_process";
import { findPythonWithTorch } from "../lib/cli/convert.ts";
import { cpus, totalmem } from "node:os";

export interface Summary {
  /** Samples taken (each the mean of `batch` calls). */
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  mean: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarise(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), min: s[0], mean: s.reduce((a, v) => a + v, 0) / s.length };
}

const nowUs = () => Number(process.hrtime.bigint()) / 1e3;

/**
 * Times `fn` in µs per call: warm-up calls, then samples of `batch` back-to-back calls each (the
 * mean of one batch is one sample) until `samples` are taken or `maxMs` is spent (at least 5).
 */
export async function timeCalls(fn: () => unknown, options: { batch?: number; samples?: number; warmup?: number; maxMs?: number } = {}): Promise<Summary> {
  const batch = options.batch ?? 100;
  const samples = options.samples ?? 200;
  const maxUs = (options.maxMs ?? 5000) * 1e3;
  for (let i = 0; i < (options.warmup ?? batch); i++) await fn();
  const out: number[] = [];
  const start = nowUs();
  while (out.length < samples && (out.length < 5 || nowUs() - start < maxUs)) {
    const t0 = nowUs();
    for (let i = 0; i < batch; i++) await fn();
    out.push((nowUs() - t0) / batch);
  }
  return summarise(out);
}

/** Like timeCalls for functions that are synchronous: no await between calls (no microtask turn). */
export function timeSyncCalls(fn: () => unknown, options: { batch?: number; samples?: number; warmup?: number; maxMs?: number } = {}): Summary {
  const batch = options.batch ?? 100;
  const samples = options.samples ?? 200;
  const maxUs = (options.maxMs ?? 5000) * 1e3;
  for (let i = 0; i < (options.warmup ?? batch); i++) fn();
  const out: number[] = [];
  const start = nowUs();
  while (out.length < samples && (out.length < 5 || nowUs() - start < maxUs)) {
    const t0 = nowUs();
    for (let i = 0; i < batch; i++) fn();
    out.push((nowUs() - t0) / batch);
  }
  return summarise(out);
}

/** The python3 that has torch, found as `torchvid convert` finds it; null when there is none. */
export function pythonWithTorch(): string | null {
  try {
    return findPythonWithTorch().python;
  } catch {
    return null;
  }
}

/** Runs a Python script that prints one JSON object on its last stdout line. */
export function runPythonJson<T>(python: string, args: string[], timeoutMs = 600_000): T {
  const out = execFileSync(python, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: timeoutMs, maxBuffer: 64 << 20 });
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** One line about the machine: CPU model x count, memory. */
export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? "?"} x${c.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
}

/** Rounds for tables: 3 significant digits. */
export function sig(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}
