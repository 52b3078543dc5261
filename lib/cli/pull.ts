/**
 * `torchvid pull org/name [--revision R] [--variant fp16] [--dtype D]`: downloads a diffusers
 * checkpoint into the Hugging Face cache and converts it once into torchvid's cache, so a later
 * `generate --model org/name` (also offline) starts at once.
 */
import type { Argv, CommandModule } from "yargs";
import { parseModelId } from "../hub/model-id.ts";
import { UsageError, type GlobalArgs } from "./common.ts";
import { hubProgressPrinter } from "./hub-progress.ts";
import { DTYPES } from "./options.ts";

interface PullArgs extends GlobalArgs {
  model: string;
  revision?: string;
  variant?: string;
  dtype?: string;
  python?: string;
}

export async function pull(argv: PullArgs): Promise<void> {
  const id = parseModelId(argv.model);
  if (!id) throw new UsageError(`"${argv.model}" is not a Hub model id: pass org/name or org/name@revision, e.g. torchvid pull damo-vilab/text-to-video-ms-1.7b`);
  if (id.revision && argv.revision && id.revision !== argv.revision) throw new UsageError(`${argv.model} names revision ${id.revision} but --revision is ${argv.revision}: pass one of them`);
  const { resolveModel } = await import("../hub/resolve.ts");
  const printer = hubProgressPrinter(argv.json);
  const started = Date.now();
  try {
    const r = await resolveModel(argv.model, {
      ...(argv.revision ? { revision: argv.revision } : {}),
      ...(argv.variant ? { variant: argv.variant } : {}),
      ...(argv.dtype ? { dtype: argv.dtype } : {}),
      ...(argv.python ? { python: argv.python } : {}),
      onHubProgress: printer.onHubProgress,
    });
    printer.close();
    const hub = r.hub!;
    if (argv.json) {
      process.stdout.write(`${JSON.stringify({ event: "result", model: hub.repo, revision: hub.revision, commit: hub.commit, variant: hub.variant ?? null, dtype: hub.dtype, snapshot: hub.snapshot, dir: r.dir, elapsedMs: Date.now() - started })}\n`);
    } else {
      process.stdout.write(`${hub.repo}@${hub.commit.slice(0, 12)} (${hub.variant ?? "full-precision"} weights, ${hub.dtype}) is ready: ${r.dir}\n`);
    }
  } finally {
    printer.close();
  }
}

export const pullCommand: CommandModule<GlobalArgs, PullArgs> = {
  command: "pull <model>",
  describe: "Download a Hub model (org/name) into the Hugging Face cache and convert it once",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional("model", { type: "string", demandOption: true, describe: "Hub model id: org/name or org/name@revision" })
      .option("revision", { type: "string", describe: "Branch, tag or commit (default main)" })
      .option("variant", { type: "string", describe: 'Weight files to fetch, e.g. "fp16" (half the download)' })
      .option("dtype", { type: "string", choices: DTYPES, describe: "Store the converted weights in this type (default float32, float16 with --variant fp16)" })
      .option("python", { type: "string", describe: "python3 with torch for the conversion" })
      .option("json", { type: "boolean", default: false, describe: "Progress and the result as JSON lines on stdout" })
      .example("$0 pull damo-vilab/text-to-video-ms-1.7b --variant fp16", "ModelScope 1.7B, fp16 weights")
      .example("HF_HUB_OFFLINE=1 $0 generate \"a cat\" --model damo-vilab/text-to-video-ms-1.7b --variant fp16", "Later, without a network") as unknown as Argv<PullArgs>,
  handler: () => {},
};
