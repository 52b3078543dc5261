/**
 * `torchvid serve`: the studio, a local web page and HTTP API to generate, watch, queue and
 * upscale videos (lib/studio). Prints its URL once the model is loaded and it listens; Ctrl-C
 * stops it (the running job goes back in the queue on disk and runs again at the next start).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { checkInt, defaultModelDir, UsageError, type GlobalArgs } from "./common.ts";

interface ServeArgs extends GlobalArgs {
  port: number;
  host: string;
  model?: string;
  out: string;
  device?: string;
  token?: string;
}

export async function serve(argv: ServeArgs): Promise<number> {
  const port = checkInt(argv.port, "port", 0, 65535);
  const model = resolve(argv.model ?? defaultModelDir());
  if (!existsSync(join(model, "manifest.json"))) {
    throw new UsageError(`--model ${model} is not a torchvid model folder (no manifest.json): pass a folder written by \`torchvid convert\``);
  }
  if (argv.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(argv.device)) {
    throw new UsageError(`--device must be cpu, cuda or cuda:N, got ${JSON.stringify(argv.device)}`);
  }
  const { startStudio, checkServerOptions } = await import("../studio/index.ts");
  const options = {
    host: argv.host,
    port,
    model,
    outDir: resolve(argv.out),
    ...(argv.device !== undefined ? { device: argv.device as "cpu" } : {}),
    ...(argv.token !== undefined ? { token: argv.token } : {}),
    logger: argv.verbose === true,
  };
  try {
    checkServerOptions(options);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let running;
  try {
    running = await startStudio(options);
  } catch (err) {
    // A taken port or --out folder is the user's to fix: a usage error (exit 2), not a crash.
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  // Load the default model now: the first job starts at once, and a broken model fails here.
  try {
    await running.studio.pipelines.get(undefined);
  } catch (err) {
    await running.close();
    throw err;
  }
  process.stdout.write(`torchvid studio: ${running.url}\n  model ${model}, results in ${options.outDir}\n  Ctrl-C to stop\n`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      process.stdout.write("torchvid studio: stopping\n");
      running.close().finally(done);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  return 0;
}

export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: "serve",
  describe: "Start the studio: a local web page and HTTP API to generate, queue, watch and upscale videos",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("port", { type: "number", default: 7860, describe: "Port to listen on (0: any free port)" })
      .option("host", { type: "string", default: "127.0.0.1", describe: "Address to bind; anything but 127.0.0.1/localhost/::1 needs --token" })
      .option("model", { type: "string", describe: "Model folder jobs use by default (default: the package's models/tiny)" })
      .option("out", { type: "string", default: "torchvid-studio", describe: "Folder for the videos and their settings (<id>.mp4 + <id>.json)" })
      .option("device", { type: "string", describe: "cpu, cuda or cuda:N (default: the library's choice)" })
      .option("token", { type: "string", describe: "Secret every API call must send as `Authorization: Bearer <token>`" })
      .example("$0 serve", "The studio on http://127.0.0.1:7860 with the default model")
      .example("$0 serve --model models/zeroscope --out videos --device cuda", "zeroscope on the GPU, results in ./videos")
      .example("$0 serve --host 0.0.0.0 --token $(openssl rand -hex 16)", "Reachable from other machines, with a token") as unknown as Argv<ServeArgs>,
  handler: () => {},
};
