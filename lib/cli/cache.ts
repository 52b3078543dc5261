/**
 * `torchvid cache list` shows the converted models in torchvid's cache (and where the Hugging
 * Face downloads they came from live); `torchvid cache rm org/name[@commit]` frees them, and with
 * --downloads also the repo's Hugging Face cache folder (which Python shares).
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { Argv, CommandModule } from "yargs";
import { parseModelId } from "../hub/model-id.ts";
import { UsageError, type GlobalArgs } from "./common.ts";

interface CacheArgs extends GlobalArgs {
  action: string;
  model?: string;
  downloads?: boolean;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export async function cache(argv: CacheArgs): Promise<void> {
  // Loaded here, not at start-up: @huggingface/hub takes a second to import.
  const { hfHubCacheDir, repoCacheDir } = await import("../hub/hf-cache.ts");
  const { listConverted, torchvidCacheDir } = await import("../hub/model-cache.ts");
  if (argv.action === "list") {
    const entries = await listConverted();
    if (argv.json) {
      process.stdout.write(`${JSON.stringify({ event: "result", cache: torchvidCacheDir(), hfCache: hfHubCacheDir(), models: entries })}\n`);
      return;
    }
    process.stdout.write(`torchvid cache: ${torchvidCacheDir()} (TORCHVID_CACHE)\nHugging Face cache: ${hfHubCacheDir()} (HF_HUB_CACHE)\n`);
    if (entries.length === 0) process.stdout.write("No converted models yet: `torchvid pull org/name` or `torchvid generate --model org/name` adds one.\n");
    for (const e of entries) {
      process.stdout.write(`${e.repo}@${e.commit.slice(0, 12)}  ${e.variant ?? "default"}  ${e.dtype}  ${mb(e.bytes)}  ${e.dir}\n`);
    }
    return;
  }
  if (argv.action === "rm") {
    if (!argv.model) throw new UsageError("Pass the model to remove: torchvid cache rm org/name (or org/name@COMMIT)");
    const id = parseModelId(argv.model);
    if (!id) throw new UsageError(`"${argv.model}" is not a model id: pass org/name or org/name@COMMIT (see torchvid cache list)`);
    const victims = (await listConverted()).filter((e) => e.repo === id.repo && (!id.revision || e.commit.startsWith(id.revision)));
    for (const e of victims) await rm(e.dir, { recursive: true, force: true });
    let freed = victims.reduce((s, e) => s + e.bytes, 0);
    const hfDir = repoCacheDir(id.repo);
    const removedDownloads = !!argv.downloads && existsSync(hfDir);
    if (removedDownloads) {
      const { scanCachedRepo } = await import("@huggingface/hub");
      freed += (await scanCachedRepo(hfDir).catch(() => ({ size: 0 }))).size;
      await rm(hfDir, { recursive: true, force: true });
    }
    if (victims.length === 0 && !removedDownloads) {
      throw new UsageError(`Nothing cached for ${argv.model}${argv.downloads ? "" : " in torchvid's cache (add --downloads to remove the Hugging Face download too)"}: see torchvid cache list`);
    }
    const summary = { event: "result", removed: victims.map((e) => e.dir).concat(removedDownloads ? [hfDir] : []), freedBytes: freed };
    if (argv.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`Removed ${summary.removed.length} folder(s), ${mb(freed)}:\n${summary.removed.join("\n")}\n`);
    return;
  }
  throw new UsageError(`Unknown cache action "${argv.action}": use list or rm`);
}

export const cacheCommand: CommandModule<GlobalArgs, CacheArgs> = {
  command: "cache <action> [model]",
  describe: "List (cache list) or remove (cache rm org/name) converted Hub models",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional("action", { type: "string", choices: ["list", "rm"], demandOption: true })
      .positional("model", { type: "string", describe: "rm: org/name, or org/name@COMMIT for one commit" })
      .option("downloads", { type: "boolean", default: false, describe: "rm: also delete the repo from the Hugging Face cache (shared with Python)" })
      .option("json", { type: "boolean", default: false, describe: "The result as JSON on stdout" })
      .example("$0 cache list", "What is stored, and how big")
      .example("$0 cache rm damo-vilab/text-to-video-ms-1.7b --downloads", "Free a model and its download") as unknown as Argv<CacheArgs>,
  handler: () => {},
};
