/**
 * Command-line checks beyond one flag's own value: a flag given twice, a value-taking flag given
 * no value, and --steps against the chosen model's training schedule. All are usage errors
 * (exit 2), found before any model loads.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "./common.ts";

/** The flags of the pipeline commands that take exactly one value. */
export const SINGLE_VALUE_FLAGS = [
  "model", "device", "dtype", "scheduler", "steps", "guidance", "seed", "negative", "width", "height", "fps", "output", "chunk-size",
  "frames", "prompt", "strength", "resize", "prompts", "num-videos", "variant",
] as const;

/**
 * yargs turns a repeated flag into an array and would carry on with a confusing "got [2,3]" (or
 * the last value, silently): say it was repeated instead.
 */
export function rejectRepeated(argv: Record<string, unknown>, flags: readonly string[] = SINGLE_VALUE_FLAGS): void {
  for (const flag of flags) {
    const value = argv[flag];
    if (Array.isArray(value)) {
      throw new UsageError(`--${flag} was given ${value.length} times (${value.map((v) => JSON.stringify(v)).join(", ")}): pass it once`);
    }
  }
}

/**
 * --steps above the model's num_train_timesteps would pass the CLI and fail inside the scheduler
 * after the model loaded: check it against the folder's scheduler_config.json first.
 */
export function checkStepsForModel(steps: number, modelDir: string): void {
  let trained = 1000;
  try {
    const config = JSON.parse(readFileSync(join(modelDir, "scheduler", "scheduler_config.json"), "utf8")) as { num_train_timesteps?: unknown };
    if (typeof config.num_train_timesteps === "number" && Number.isInteger(config.num_train_timesteps)) trained = config.num_train_timesteps;
  } catch {
    return; // no readable scheduler config: loading the model says what is wrong with the folder
  }
  if (steps > trained) {
    throw new UsageError(
      `--steps ${steps} is more than the ${trained} timesteps the model was trained with (num_train_timesteps in ${join(modelDir, "scheduler", "scheduler_config.json")}): use at most ${trained}; 20-50 is usual`,
    );
  }
}

/** A yargs validation message as our usage error ("Not enough arguments following: o" -> "-o needs a value"). */
export function usageFromYargs(message: string): UsageError {
  const m = /^Not enough arguments following: (\S+)$/.exec(message);
  if (m) {
    const flag = m[1].length === 1 ? `-${m[1]}` : `--${m[1]}`;
    return new UsageError(`${flag} needs a value (e.g. ${flag} ${EXAMPLES[m[1]] ?? "VALUE"}); nothing was run`);
  }
  return new UsageError(message);
}

const EXAMPLES: Record<string, string> = { o: "out.mp4", output: "out.mp4", frames: "16", steps: "25", model: "models/ms-1.7b", width: "256", height: "256", guidance: "9", seed: "42", lora: "lora.safetensors" };
