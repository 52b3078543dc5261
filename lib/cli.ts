/**
 * The torchvid command line: generate | upscale | convert | pull | cache | info | bench (in a clone)
 * | serve | worker | submit | jobs.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted (Ctrl-C).
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import yargs, { type Argv, type CommandModule } from "yargs";
import { benchCommand, bench } from "./cli/bench.ts";
import { EXIT_OK, packageRoot, packageVersion, reportError, UsageError, type GlobalArgs } from "./cli/common.ts";
import { usageFromYargs } from "./cli/arg-checks.ts";
import { convert, convertCommand } from "./cli/convert.ts";
import { generate, generateCommand } from "./cli/generate.ts";
import { info, infoCommand } from "./cli/info.ts";
import { jobs, jobsCommand } from "./cli/jobs.ts";
import { serve, serveCommand } from "./cli/serve.ts";
import { submit, submitCommand } from "./cli/submit.ts";
import { upscale, upscaleCommand } from "./cli/upscale.ts";
import { worker, workerCommand } from "./cli/worker.ts";
import { withPipelineApi, type PipelineApi } from "./cli/run-pipeline.ts";
import { pull, pullCommand } from "./cli/pull.ts";
import { withFlagSuggestions } from "./cli/did-you-mean.ts";
import { cache, cacheCommand } from "./cli/cache.ts";

/** The flags yargs knows at this point of the parse (the command's own ones once it is chosen). */
function knownFlags(y: unknown): string[] {
  const options = (y as { getOptions?: () => { key?: Record<string, unknown> } }).getOptions?.();
  return Object.keys(options?.key ?? {});
}

type Run<A> = (argv: A) => Promise<number | void>;

/** The benchmark is a development tool: bench/ is in a clone, not in the npm package. */
const benchShipped = () => existsSync(join(packageRoot(), "bench"));

const COMMANDS = ["generate", "upscale", "convert", "info", "bench", "pull", "cache", "serve", "worker", "submit", "jobs"];

export interface MainOptions {
  /** Where generate/upscale/info get the pipeline API (defaults to this package's lib): tests pass a stand-in. */
  pipelineApi?: () => Promise<PipelineApi>;
}

/** Runs the CLI with `args` (without node and the script) and resolves with the exit code. */
export async function main(args: string[] = process.argv.slice(2), options: MainOptions = {}): Promise<number> {
  let exitCode = EXIT_OK;
  const first = args.find((a) => !a.startsWith("-"));
  const command = first !== undefined && COMMANDS.includes(first) ? first : undefined;

  function register<A extends GlobalArgs>(y: Argv<GlobalArgs>, module: CommandModule<GlobalArgs, A>, run: Run<A>): Argv<GlobalArgs> {
    return y.command({
      ...module,
      handler: async (argv) => {
        try {
          const code = await run(argv as unknown as A);
          exitCode = typeof code === "number" ? code : EXIT_OK;
        } catch (err) {
          exitCode = reportError(err, argv as GlobalArgs, command);
        }
      },
    });
  }

  let cli: Argv<GlobalArgs> = yargs(args)
    .scriptName("torchvid")
    .usage("$0 <command> [options]\n\nText-to-video diffusion on libtorch.")
    .option("verbose", { type: "boolean", default: false, describe: "Show stack traces on errors" })
    .strict()
    .demandCommand(1, `Pass a command: ${COMMANDS.filter((c) => c !== "bench" || benchShipped()).join(", ")}`)
    .recommendCommands()
    .version(packageVersion())
    .help()
    .alias("help", "h")
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // Validation failures (unknown flag, missing argument, a flag without its value) are usage errors, exit 2.
      throw err && err.name !== "YError" ? err : usageFromYargs(msg || err?.message || "invalid command line");
    })
    .epilogue("Exit codes: 0 ok, 1 failure, 2 usage error, 130 interrupted. Docs: docs/cli-and-video.md");
  cli = register(cli, generateCommand, generate);
  cli = register(cli, upscaleCommand, upscale);
  cli = register(cli, convertCommand, convert);
  cli = register(cli, infoCommand, info);
  // The benchmark is a development tool (bench/ is not in the npm package): offered only where it is.
  if (benchShipped()) cli = register(cli, benchCommand, bench);
  cli = register(cli, pullCommand, pull);
  cli = register(cli, cacheCommand, cache);
  cli = register(cli, serveCommand, serve);
  cli = register(cli, workerCommand, worker);
  cli = register(cli, submitCommand, submit);
  cli = register(cli, jobsCommand, jobs);

  try {
    await withPipelineApi(options.pipelineApi, () => cli.parseAsync());
  } catch (err) {
    // A typo'd flag: name the flag of this command it most likely meant.
    if (err instanceof UsageError) err.message = withFlagSuggestions(err.message, knownFlags(cli));
    const verbose = args.includes("--verbose");
    const json = args.includes("--json");
    exitCode = reportError(err, { verbose, json }, command);
  }
  return exitCode;
}
