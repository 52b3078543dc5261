/**
 * `torchvid bench`: runs the benchmark that bench/index.ts provides (`runBenchmark(options)`)
 * and prints its rows as a table.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Argv, CommandModule } from "yargs";
import { TorchvidError } from "../errors.ts";
import { checkInt, defaultModelDir, packageRoot, type GlobalArgs } from "./common.ts";

interface BenchArgs extends GlobalArgs {
  model?: string;
  steps?: number;
  frames?: number;
  width?: number;
  height?: number;
  device?: string;
  dtype?: string;
  json: boolean;
}

export type BenchRow = Record<string, unknown>;
/** What bench/index.ts is expected to export. */
export type RunBenchmark = (options: Record<string, unknown>) => Promise<BenchRow[] | { rows: BenchRow[]; meta?: Record<string, unknown> }>;
type FormatReport = (rows: BenchRow[], meta: Record<string, unknown>) => Promise<string> | string;

async function loadBenchmark(): Promise<{ run: RunBenchmark; format?: FormatReport }> {
  const root = packageRoot();
  const file = [join(root, "bench", "index.js"), join(root, "bench", "index.ts")].find((f) => existsSync(f));
  if (!file) throw new TorchvidError("ERR_TORCHVID_FORWARD", `The benchmark is not in this install (${join(root, "bench", "index.ts")} not found)`);
  // The benchmark is TypeScript (a development tool): from the compiled CLI, load it through tsx.
  if (file.endsWith(".ts")) {
    try {
      const { register } = (await import("tsx/esm/api")) as { register: () => unknown };
      register();
    } catch {
      throw new TorchvidError("ERR_TORCHVID_FORWARD", "torchvid bench runs bench/index.ts, which needs tsx (a dev dependency): run `npm ci` in the torchvid checkout");
    }
  }
  const mod = (await import(pathToFileURL(file).href)) as { runBenchmark?: unknown; default?: unknown; formatReport?: unknown };
  const fn = mod.runBenchmark ?? mod.default;
  if (typeof fn !== "function") throw new TorchvidError("ERR_TORCHVID_FORWARD", `${file} does not export a runBenchmark(options) function yet`);
  return { run: fn as RunBenchmark, format: typeof mod.formatReport === "function" ? (mod.formatReport as FormatReport) : undefined };
}

/** Renders rows of objects as an aligned text table (columns: the union of keys, in order). */
export function formatTable(rows: BenchRow[]): string {
  if (rows.length === 0) return "(no results)";
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3)) : v === undefined || v === null ? "" : String(v));
  const body = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

export async function bench(argv: BenchArgs): Promise<number> {
  const options: Record<string, unknown> = { model: argv.model ?? defaultModelDir() };
  if (argv.steps !== undefined) options.steps = checkInt(argv.steps, "steps", 1);
  if (argv.frames !== undefined) options.frames = checkInt(argv.frames, "frames", 1);
  if (argv.width !== undefined) options.width = checkInt(argv.width, "width", 8);
  if (argv.height !== undefined) options.height = checkInt(argv.height, "height", 8);
  if (argv.device !== undefined) options.device = argv.device;
  if (argv.dtype !== undefined) options.dtype = argv.dtype;
  const benchmark = await loadBenchmark();
  const out = await benchmark.run(options);
  const rows = Array.isArray(out) ? out : out.rows;
  const meta = Array.isArray(out) ? {} : (out.meta ?? {});
  if (argv.json) process.stdout.write(`${JSON.stringify({ event: "result", rows, meta })}\n`);
  else process.stdout.write(`${benchmark.format ? await benchmark.format(rows, meta) : formatTable(rows)}\n`);
  return 0;
}

export const benchCommand: CommandModule<GlobalArgs, BenchArgs> = {
  command: "bench",
  describe: "Run the benchmark (bench/index.ts) and print a table",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("model", { type: "string", describe: "Model folder (default: the package's models/tiny)" })
      .option("steps", { type: "number", describe: "Denoising steps per run" })
      .option("frames", { type: "number", describe: "Frames per video" })
      .option("width", { type: "number", describe: "Frame width" })
      .option("height", { type: "number", describe: "Frame height" })
      .option("device", { type: "string", describe: "cpu, cuda or cuda:N" })
      .option("dtype", { type: "string", choices: ["float32", "float16", "bfloat16"], describe: "Model dtype" })
      .option("json", { type: "boolean", default: false, describe: "Print the rows as JSON" })
      .example("$0 bench", "The default model on the default device")
      .example("$0 bench --model models/zeroscope-576w --device cuda --dtype float16 --steps 10", "A real model on a GPU") as unknown as Argv<BenchArgs>,
  handler: () => {},
};
