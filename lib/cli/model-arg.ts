/**
 * `--model` as a Hub id (`org/name[@revision]`): resolved to a local model folder before the
 * pipeline loads, with download and conversion progress on the terminal.
 */
import { parseModelId } from "../hub/model-id.ts";
import { hubProgressPrinter } from "./hub-progress.ts";
import type { PipelineSetup } from "./run-pipeline.ts";

export interface ModelArgs {
  variant?: string;
  dtype?: string;
  json?: boolean;
}

/**
 * Replaces `setup.model` by the converted model folder when it is a Hub id (a folder path is left
 * alone) and returns the id, or undefined for a folder.
 */
export async function resolveCliModel(setup: PipelineSetup, args: ModelArgs, signal?: AbortSignal): Promise<string | undefined> {
  const id = parseModelId(setup.model);
  if (!id) return undefined;
  const { resolveModel } = await import("../hub/resolve.ts");
  const printer = hubProgressPrinter(args.json);
  try {
    const resolved = await resolveModel(setup.model, {
      ...(args.variant ? { variant: args.variant } : {}),
      ...(args.dtype ? { dtype: args.dtype } : {}),
      ...(signal ? { signal } : {}),
      onHubProgress: printer.onHubProgress,
    });
    setup.model = resolved.dir;
  } finally {
    printer.close();
  }
  return id.revision ? `${id.repo}@${id.revision}` : id.repo;
}
