/**
 * Model id -> local model folder: the one function `fromPretrained` calls. A folder path is
 * returned as is; a Hub id (`org/name`, `org/name@revision`) is found in (or downloaded into) the
 * Hugging Face cache, then converted once into torchvid's cache.
 */
import type { DType } from "../tensor.ts";
import { formatModelId, parseModelId } from "./model-id.ts";

/** What a model id load reports, for a progress bar. */
export type HubEvent =
  | ({ kind: "download" } & import("./download.ts").DownloadProgress)
  | { kind: "convert"; repo: string; message: string }
  | { kind: "wait"; repo: string; message: string };

/** The options of `fromPretrained` that matter when it is given a Hub model id (ignored for a folder). */
export interface HubOptions {
  /** A branch, tag or commit of the repo. Defaults to "main" (or what `org/name@revision` says). */
  revision?: string;
  /** Weight files to read: "fp16" fetches and converts `*.fp16.safetensors` (half the download). Defaults to the full-precision files. */
  variant?: string;
  /** Hugging Face access token for private or gated repos. Defaults to HF_TOKEN or the saved `huggingface-cli login` token. */
  token?: string;
  /** Hub URL (a mirror). Defaults to HF_ENDPOINT or https://huggingface.co. */
  hubUrl?: string;
  /** Use the local caches only, never the network. Defaults to HF_HUB_OFFLINE. */
  offline?: boolean;
  /** python3 with torch for the one-time conversion. Defaults to TORCHVID_PYTHON, python3, /usr/bin/python3 (the first with torch). */
  python?: string;
  /** Download, conversion and wait events. */
  onHubProgress?: (event: HubEvent) => void;
  /** Stops a download between chunks. */
  signal?: AbortSignal;
}

/** Where a model id resolved to. */
export interface ResolvedModel {
  /** The torchvid model folder to load. */
  dir: string;
  /** Set when `model` was a Hub id. */
  hub?: { repo: string; revision: string; commit: string; variant?: string; dtype: string; snapshot: string };
}

/** The dtype a checkpoint is stored in after conversion: the requested one, else fp16 for the fp16 variant, else float32. */
export function convertedDType(options: { dtype?: DType | string; variant?: string }): string {
  return options.dtype ?? (options.variant === "fp16" ? "float16" : "float32");
}

/** Resolves `model` (a folder, or a Hub model id) to a local torchvid model folder. */
export async function resolveModel(model: string, options: HubOptions & { dtype?: DType | string } = {}): Promise<ResolvedModel> {
  const id = typeof model === "string" ? parseModelId(model) : null;
  if (!id) return { dir: model };
  if (id.revision && options.revision && id.revision !== options.revision) {
    throw new TypeError(`${formatModelId(id)} names revision ${id.revision} but options.revision is ${options.revision}: pass one of them`);
  }
  const revision = id.revision ?? options.revision ?? "main";
  const { downloadCheckpoint } = await import("./download.ts");
  const { ensureConverted } = await import("./model-cache.ts");
  const emit = options.onHubProgress;
  const snapshot = await downloadCheckpoint(id.repo, {
    revision,
    ...(options.variant ? { variant: options.variant } : {}),
    ...(options.token ? { token: options.token } : {}),
    ...(options.hubUrl ? { hubUrl: options.hubUrl } : {}),
    ...(options.offline !== undefined ? { offline: options.offline } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(emit ? { onProgress: (p) => emit({ kind: "download", ...p }) } : {}),
  });
  const dtype = convertedDType(options);
  const key = { repo: id.repo, commit: snapshot.commit, ...(options.variant ? { variant: options.variant } : {}), dtype };
  const dir = await ensureConverted(
    snapshot.dir,
    key,
    {
      onWait: (message) => emit?.({ kind: "wait", repo: id.repo, message }),
      onLine: (message) => emit?.({ kind: "convert", repo: id.repo, message }),
    },
    options.python ? { python: options.python } : {},
  );
  return { dir, hub: { repo: id.repo, revision, commit: snapshot.commit, ...(options.variant ? { variant: options.variant } : {}), dtype, snapshot: snapshot.dir } };
}

/** `resolveModel(...).dir`: the model folder for a folder path or a Hub model id. */
export async function resolveModelFolder(model: string, options: HubOptions & { dtype?: DType | string } = {}): Promise<string> {
  return (await resolveModel(model, options)).dir;
}
