/**
 * Options and checks shared by `generate` and `upscale`, and the Ctrl-C wiring.
 */

import { statSync } from "node:fs";
import type { Argv } from "yargs";
import { AbortError, TorchvidError } from "../errors.ts";
import { assertWritable } from "../video/atomic.ts";
import { outputTarget } from "../video/export.ts";
import { rejectRepeated, SINGLE_VALUE_FLAGS } from "./arg-checks.ts";
import { isModelId } from "../hub/model-id.ts";
import { checkInt, checkNumber, defaultModelDir, parseLora, parseSeed, randomSeed, UsageError } from "./common.ts";
import type { Reporter } from "./progress.ts";
import { SCHEDULER_NAMES, type PipelineSetup } from "./run-pipeline.ts";

export const DTYPES = ["float32", "float16", "bfloat16"] as const;

/** Flags of every command that runs a pipeline. */
export function withPipelineOptions<T>(y: Argv<T>) {
  return y
    .option("model", { type: "string", describe: "Model folder written by `torchvid convert` (default: the package's models/tiny)", group: "Model:" })
    .option("variant", { type: "string", describe: 'With a Hub id as --model (org/name[@revision]): weight files to fetch, e.g. "fp16"', group: "Model:" })
    .option("device", { type: "string", describe: "cpu, cuda or cuda:N (default: the library's choice)", group: "Model:" })
    .option("dtype", { type: "string", choices: DTYPES, describe: "Weights and activations type (float16 needs CUDA)", group: "Model:" })
    .option("scheduler", { type: "string", describe: `Sampler: ${SCHEDULER_NAMES.join(", ")} (default: the model's)`, group: "Sampling:" })
    .option("steps", { type: "number", default: 50, describe: "Denoising steps", group: "Sampling:" })
    .option("guidance", { type: "number", describe: "Classifier-free guidance scale (1 turns it off)", group: "Sampling:" })
    .option("seed", { type: "string", describe: "Random seed (an integer; random when left out, printed in the result)", group: "Sampling:" })
    .option("negative", { type: "string", describe: "Negative prompt", group: "Sampling:" })
    .option("width", { type: "number", describe: "Frame width in pixels, a multiple of 8", group: "Size:" })
    .option("height", { type: "number", describe: "Frame height in pixels, a multiple of 8", group: "Size:" })
    .option("fps", { type: "number", describe: "Frames per second of the written video", group: "Output:" })
    .option("output", { alias: "o", type: "string", describe: "Output: .mp4 .webm .gif .webp, frames/%04d.png or a folder (generate: default out.mp4)", group: "Output:" })
    .option("cpu-offload", { type: "boolean", default: false, describe: "Keep models on the CPU, move each to the GPU only for its stage", group: "Memory:" })
    .option("vae-slicing", { type: "boolean", default: false, describe: "Decode a few frames at a time", group: "Memory:" })
    .option("chunk-size", { type: "number", describe: "Run UNet feed-forward layers in chunks of N (less memory, same result)", group: "Memory:" })
    .option("lora", { type: "string", describe: "LoRA weights FILE[:scale] (repeat the flag for several)", group: "Model:" })
    .option("json", { type: "boolean", default: false, describe: "Print progress and the result as JSON lines on stdout" })
    // A value flag given without its value (`--frames`, `-o` at the end) is a usage error, not a default.
    .requiresArg([...SINGLE_VALUE_FLAGS.filter((f) => !["frames", "prompt", "strength", "resize", "prompts", "num-videos"].includes(f)), "lora"]);
}

export interface PipelineArgs {
  model?: string;
  variant?: string;
  device?: string;
  dtype?: string;
  scheduler?: string;
  steps: number;
  guidance?: number;
  seed?: string;
  negative?: string;
  width?: number;
  height?: number;
  fps?: number;
  output?: string;
  cpuOffload: boolean;
  vaeSlicing: boolean;
  chunkSize?: number;
  lora?: string | string[];
  json?: boolean;
  verbose?: boolean;
}

function checkMultipleOf8(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  checkInt(value, flag, 8);
  if (value % 8 !== 0) {
    const down = Math.max(8, Math.floor(value / 8) * 8);
    throw new UsageError(`--${flag} must be a multiple of 8 (the VAE works on 8x8 blocks), got ${value}; try ${down} or ${down + 8}`);
  }
  return value;
}

/** Validates the shared flags (usage errors, exit 2) and returns the pipeline setup and sampling values. */
export function parsePipelineArgs(argv: PipelineArgs, defaults: { guidance: number }) {
  rejectRepeated(argv as unknown as Record<string, unknown>);
  const steps = checkInt(argv.steps, "steps", 1, 10000);
  const guidance = checkNumber(argv.guidance ?? defaults.guidance, "guidance", 0);
  const width = checkMultipleOf8(argv.width, "width");
  const height = checkMultipleOf8(argv.height, "height");
  if (argv.scheduler !== undefined && !(SCHEDULER_NAMES as readonly string[]).includes(argv.scheduler)) {
    throw new UsageError(`Unknown scheduler "${argv.scheduler}": choose one of ${SCHEDULER_NAMES.join(", ")}`);
  }
  if (argv.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(argv.device)) {
    throw new UsageError(`--device must be cpu, cuda or cuda:N, got ${JSON.stringify(argv.device)}`);
  }
  const chunkSize = argv.chunkSize === undefined ? undefined : checkInt(argv.chunkSize, "chunk-size", 1);
  if (argv.fps !== undefined) checkNumber(argv.fps, "fps", 0.01, 1000);
  const seed = parseSeed(argv.seed) ?? randomSeed();
  const setup: PipelineSetup = {
    model: argv.model ?? defaultModelDir(),
    ...(argv.device !== undefined ? { device: argv.device } : {}),
    ...(argv.dtype !== undefined ? { dtype: argv.dtype } : {}),
    ...(argv.scheduler !== undefined ? { scheduler: argv.scheduler } : {}),
    cpuOffload: argv.cpuOffload,
    vaeSlicing: argv.vaeSlicing,
    ...(chunkSize !== undefined ? { chunkSize } : {}),
    loras: ([] as string[]).concat(argv.lora ?? []).map(parseLora),
  };
  return { setup, steps, guidance, width, height, seed };
}

/** Checks the output path before any work: format (usage error) then writability (runtime error). */
export function checkOutput(path: string): void {
  let target;
  try {
    target = outputTarget(path);
  } catch (err) {
    if (err instanceof TorchvidError) throw new UsageError(err.message);
    throw err;
  }
  if (target.kind === "frames") assertWritable(target.dir, "folder");
  else assertWritable(target.path);
}

/** Throws the "run torchvid convert first" error unless `dir` is a folder. */
export function checkModel(dir: string): void {
  if (isModelId(dir)) return; // a Hub id: downloaded and converted when the run starts
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {}
  if (!ok) {
    throw new TorchvidError(
      "ERR_TORCHVID_MODEL_LOAD",
      `Model folder ${dir} not found: run \`torchvid convert SRC DST\` first (SRC a diffusers checkpoint folder, e.g. damo-vilab/text-to-video-ms-1.7b), or pass a Hub model id (org/name), or for a small random test model \`torchvid convert --random tiny CKPT && torchvid convert CKPT ${dir}\``,
    );
  }
}

/**
 * Ctrl-C (or SIGTERM) aborts the run through an AbortController: the pipeline stops between
 * steps and the export removes its temp file. A second Ctrl-C quits at once (exit 130).
 */
export function interruptible(reporter: Reporter): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write("torchvid: interrupted again, quitting now\n");
      process.exit(130);
    }
    reporter.note(`Stopping after the current step (${sig}); press Ctrl-C again to quit at once`);
    controller.abort(new AbortError("Interrupted"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** Throws the abort reason if `signal` fired (the pipeline may return normally after a late abort). */
export function throwIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError("Interrupted");
}

/** JSON-safe seed. */
export function seedForJson(seed: number | bigint): number | string {
  return typeof seed === "bigint" ? seed.toString() : seed;
}
