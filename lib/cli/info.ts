/**
 * `torchvid info`: the native core (addon, libtorch, CUDA, devices) and the media tools.
 */

import type { Argv, CommandModule } from "yargs";
import { findFfmpeg } from "../video/ffmpeg.ts";
import { packageVersion, type GlobalArgs } from "./common.ts";
import { nativeInfo } from "./run-pipeline.ts";

interface InfoArgs extends GlobalArgs {
  json: boolean;
}

function mediaInfo(): Record<string, unknown> {
  let ffmpeg: Record<string, unknown>;
  try {
    ffmpeg = { ...findFfmpeg() };
  } catch (err) {
    ffmpeg = { error: (err as Error).message };
  }
  return { ffmpeg };
}

function fmtBytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(0)} MiB`;
}

function printValue(key: string, value: unknown, indent = ""): void {
  if (Array.isArray(value)) {
    process.stdout.write(`${indent}${key}: ${value.length === 0 ? "none" : ""}\n`);
    for (const item of value) {
      if (item && typeof item === "object") {
        const d = item as Record<string, unknown>;
        const parts = Object.entries(d).map(([k, v]) => `${k}=${k.toLowerCase().includes("memory") && typeof v === "number" ? fmtBytes(v) : String(v)}`);
        process.stdout.write(`${indent}  - ${parts.join(", ")}\n`);
      } else process.stdout.write(`${indent}  - ${String(item)}\n`);
    }
  } else if (value && typeof value === "object") {
    process.stdout.write(`${indent}${key}:\n`);
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) printValue(k, v, `${indent}  `);
  } else process.stdout.write(`${indent}${key}: ${value === null || value === undefined ? "-" : String(value)}\n`);
}

export async function info(argv: InfoArgs): Promise<number> {
  const { info: native, error } = await nativeInfo();
  const result = {
    torchvid: packageVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    native: native ?? { error: error instanceof Error ? error.message : String(error) },
    media: mediaInfo(),
  };
  if (argv.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else for (const [k, v] of Object.entries(result)) printValue(k, v);
  return native ? 0 : 1;
}

export const infoCommand: CommandModule<GlobalArgs, InfoArgs> = {
  command: "info",
  describe: "Show the addon, libtorch and CUDA build, devices, and the ffmpeg in use",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("json", { type: "boolean", default: false, describe: "Print one JSON object" })
      .example("$0 info", "Is CUDA available? Which libtorch was found?")
      .example("$0 info --json", "The same, machine-readable") as unknown as Argv<InfoArgs>,
  handler: () => {},
};
