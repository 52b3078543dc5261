/**
 * `torchvid convert SRC DST`: runs the Python converter (tools/convert) with a python3 that has torch.
 */

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { TorchvidError } from "../errors.ts";
import { packageRoot, UsageError, type GlobalArgs } from "./common.ts";

export const RANDOM_MODELS = ["tiny", "ms-1.7b", "zeroscope-576w"] as const;

interface ConvertArgs extends GlobalArgs {
  src?: string;
  dst?: string;
  dtype?: string;
  variant?: string;
  random?: string;
  lora?: boolean;
  python?: string;
  seed?: number;
  attention?: string;
  overwrite?: boolean;
  quiet?: boolean;
}

export interface PythonWithTorch {
  python: string;
  torchVersion: string;
}

function torchVersionOf(python: string): { version?: string; why?: string } {
  const r = spawnSync(python, ["-c", "import torch, sys; sys.stdout.write(torch.__version__)"], { encoding: "utf8", timeout: 120_000 });
  if (r.error) return { why: (r.error as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : r.error.message };
  if (r.status !== 0) {
    const last = (r.stderr || "").trim().split("\n").at(-1) ?? "";
    return { why: /No module named .?torch/.test(last) ? "no torch" : last || `exit code ${r.status}` };
  }
  return { version: r.stdout.trim() };
}

/**
 * The first python3 that can `import torch`: `--python`, then `TORCHVID_PYTHON`, `python3` on
 * PATH, `/usr/bin/python3`. An explicit `--python` without torch is an error of its own.
 */
export function findPythonWithTorch(explicit?: string): PythonWithTorch {
  if (explicit) {
    const r = torchVersionOf(explicit);
    if (r.version) return { python: explicit, torchVersion: r.version };
    throw new TorchvidError("ERR_TORCHVID_CONVERT", `--python ${explicit} cannot import torch (${r.why}); install torch for it (pip install torch) or pick another python`);
  }
  const candidates = [process.env.TORCHVID_PYTHON, "python3", "/usr/bin/python3"].filter((c): c is string => !!c);
  const tried: string[] = [];
  for (const python of [...new Set(candidates)]) {
    const r = torchVersionOf(python);
    if (r.version) return { python, torchVersion: r.version };
    tried.push(`${python} (${r.why})`);
  }
  throw new TorchvidError(
    "ERR_TORCHVID_CONVERT",
    `No python3 with torch found: tried ${tried.join(", ")}. Install torch (\`pip install torch\`, or \`apt-get install python3-torch\` on Debian) or pass --python / set TORCHVID_PYTHON`,
  );
}

export async function convert(argv: ConvertArgs): Promise<number> {
  const positionals = [argv.src, argv.dst].filter((p): p is string => p !== undefined);
  let args: string[];
  if (argv.lora) {
    if (argv.random !== undefined) throw new UsageError("--lora and --random do not go together");
    if (positionals.length !== 2) throw new UsageError("With --lora pass the pickled LoRA and the file to write: torchvid convert --lora unet_lora.pt lora.safetensors");
    if (!existsSync(positionals[0]!)) throw new TorchvidError("ERR_TORCHVID_CONVERT", `LoRA file ${positionals[0]} not found (the .pt/.bin state dict to convert)`);
    args = ["--lora", resolve(positionals[0]!), resolve(positionals[1]!)];
  } else if (argv.random !== undefined) {
    if (!(RANDOM_MODELS as readonly string[]).includes(argv.random)) throw new UsageError(`Unknown --random model "${argv.random}": choose one of ${RANDOM_MODELS.join(", ")}`);
    if (positionals.length !== 1) throw new UsageError("With --random pass only the output folder: torchvid convert --random tiny OUT");
    args = ["--random", argv.random, resolve(positionals[0]!)];
  } else {
    if (positionals.length !== 2) throw new UsageError("Pass a source checkpoint folder and an output folder: torchvid convert SRC DST");
    if (!existsSync(positionals[0]!)) throw new TorchvidError("ERR_TORCHVID_CONVERT", `Source folder ${positionals[0]} not found (a diffusers checkpoint folder with model_index.json)`);
    args = [resolve(positionals[0]!), resolve(positionals[1]!)];
  }
  if (argv.dtype !== undefined) args.push("--dtype", argv.dtype);
  if (argv.variant !== undefined) args.push("--variant", argv.variant);
  if (argv.seed !== undefined) {
    if (argv.random === undefined) throw new UsageError("--seed only applies with --random");
    if (!Number.isInteger(argv.seed) || argv.seed < 0) throw new UsageError(`--seed must be a non-negative integer, got ${argv.seed}`);
    args.push("--seed", String(argv.seed));
  }
  if (argv.attention !== undefined) args.push("--attention", argv.attention);
  if (argv.overwrite) args.push("--overwrite");
  if (argv.quiet) args.push("--quiet");
  if (argv.verbose) args.push("--verbose");

  const tools = join(packageRoot(), "tools");
  if (!existsSync(join(tools, "convert"))) throw new TorchvidError("ERR_TORCHVID_CONVERT", `The converter is not in this install (${join(tools, "convert")} not found)`);
  const { python, torchVersion } = findPythonWithTorch(argv.python);
  process.stderr.write(`Converting with ${python} (torch ${torchVersion}): python -m convert ${args.join(" ")}\n`);

  const child = spawn(python, ["-m", "convert", ...args], { cwd: tools, stdio: "inherit" });
  // Ctrl-C reaches the converter through the terminal; a signal sent to us alone is passed on.
  let interrupted = false;
  const forward = (sig: NodeJS.Signals) => {
    interrupted = true;
    child.kill(sig);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
      child.on("error", rej);
      child.on("close", (code, signal) => res({ code, signal }));
    });
    // The converter reports Ctrl-C as a failure (exit 1); to us it is an interruption.
    if (interrupted || signal === "SIGINT" || code === 130) {
      process.stderr.write("torchvid: interrupted\n");
      return 130;
    }
    if (code !== 0) throw new TorchvidError("ERR_TORCHVID_CONVERT", `The converter failed (${signal ? `signal ${signal}` : `exit code ${code}`}); its output is above`);
    return 0;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  }
}

export const convertCommand: CommandModule<GlobalArgs, ConvertArgs> = {
  command: "convert [src] [dst]",
  describe: "Convert a diffusers checkpoint into a torchvid model folder (needs Python with torch)",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional("src", { type: "string", describe: "diffusers checkpoint folder (model_index.json, unet/, vae/, text_encoder/, ...)" })
      .positional("dst", { type: "string", describe: "Output model folder" })
      .option("dtype", { type: "string", choices: ["float32", "float16", "bfloat16"], describe: "Store weights in this type" })
      .option("variant", { type: "string", describe: 'Read the checkpoint\'s weight variant, e.g. "fp16"' })
      .option("random", { type: "string", describe: `Write a random-weight diffusers checkpoint (convert it next): ${RANDOM_MODELS.join(", ")}` })
      .option("lora", { type: "boolean", describe: "Convert a pickled LoRA (.pt/.bin, read with weights_only) to .safetensors: --lora IN OUT" })
      .option("seed", { type: "number", describe: "Seed of the --random weights (default 0)" })
      .option("attention", { type: "string", choices: ["auto", "sdpa", "plain"], describe: "Attention baked into the export (auto: sdpa when the torch has it)" })
      .option("overwrite", { type: "boolean", describe: "Replace an existing non-empty destination" })
      .option("quiet", { type: "boolean", describe: "Print nothing but errors" })
      .option("python", { type: "string", describe: "python3 to run (default: TORCHVID_PYTHON, python3, /usr/bin/python3 - the first with torch)" })
      .example("$0 convert ~/hf/text-to-video-ms-1.7b models/ms-1.7b --variant fp16 --dtype float16", "ModelScope 1.7B, fp16 weights")
      .example("$0 convert ~/hf/zeroscope_v2_576w models/zeroscope-576w", "zeroscope v2 576w")
      .example("$0 convert --lora unet_lora.pt unet_lora.safetensors", "A pickled LoRA state dict (e.g. T2V-Turbo) as safetensors for loadLoraWeights / --lora")
      .example("$0 convert --random tiny ckpt/tiny && $0 convert ckpt/tiny models/tiny", "A tiny random checkpoint, then its model folder (for tests)") as unknown as Argv<ConvertArgs>,
  handler: () => {},
};
