/**
 * Reads a torchvid model folder (what `torchvid convert` writes): manifest.json, the TorchScript
 * files, tokenizer/, scheduler/ and configs/. Every problem is a ModelFormatError that names the
 * file and the fix. Every load reads the files again: two pipelines loaded from one folder own
 * separate weights, so a LoRA or chunking change on one never reaches the other (share on
 * purpose with `fromPipe`).
 */
import { createHash } from "node:crypto";
import { accessSync, constants, createReadStream, statSync, type Stats } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { ModelFormatError, TorchvidError } from "../errors.ts";
import { TorchModule } from "../module.ts";
import { native } from "../native.ts";
import { checkComponentWeights, checkConfigValues } from "./component-checks.ts";
import type { DType, Device } from "../tensor.ts";

export const COMPONENTS = ["text_encoder", "unet", "vae_encoder", "vae_decoder"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface ComponentEntry {
  file: string;
  sha256: string;
  bytes: number;
  parameters: number;
}

export interface ModelManifest {
  format: "torchvid-model";
  formatVersion: number;
  dtype: DType;
  torchVersion: string;
  attention?: string;
  source?: { path?: string; modelIndex?: Record<string, unknown> | null; variant?: string | null };
  components: Record<ComponentName, ComponentEntry>;
  createdBy?: string;
}

export const SUPPORTED_FORMAT_VERSION = 1;

const CONVERT_HINT = "run `torchvid convert <diffusers checkpoint> <model folder>` to write it";

/** "permission denied" (with the fix) for EACCES/EPERM, else null: a file that is there but unreadable is not "missing". */
function permissionProblem(err: unknown, what: string, path: string): ModelFormatError | null {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "EACCES" && code !== "EPERM") return null;
  return new ModelFormatError(
    `${what} ${path} cannot be read: permission denied. Make the model folder readable (chmod -R a+rX <model folder>) or run as a user who can read it`,
    { cause: err },
  );
}

/** stat that tells "missing" from "permission denied" (existsSync says false for both). */
function statOrExplain(path: string, what: string, missing: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw permissionProblem(err, what, path) ?? new ModelFormatError(`${what} ${path} ${missing}`, { cause: err });
  }
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw permissionProblem(err, what, path) ?? new ModelFormatError(`${what} ${path} is missing: ${CONVERT_HINT}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ModelFormatError(`${what} ${path} is not valid JSON (${(err as Error).message}): ${CONVERT_HINT} again`);
  }
}

/** A model folder whose manifest and configs have been read and checked. */
export class ModelFolder {
  private constructor(
    readonly dir: string,
    readonly manifest: ModelManifest,
    readonly unetConfig: Record<string, unknown>,
    readonly vaeConfig: Record<string, unknown>,
    readonly textEncoderConfig: Record<string, unknown>,
    readonly schedulerConfig: Record<string, unknown>,
  ) {}

  static async open(dir: string): Promise<ModelFolder> {
    if (typeof dir !== "string" || dir.length === 0) throw new TypeError(`Expected a model folder path but received ${typeof dir}`);
    if (!statOrExplain(dir, "Model folder", `not found: ${CONVERT_HINT} (or pass the folder it wrote)`).isDirectory()) {
      throw new ModelFormatError(`Model folder ${dir} is a file, not a folder: ${CONVERT_HINT} (or pass the folder it wrote)`);
    }
    const real = await realpath(dir);
    const manifest = (await readJson(join(real, "manifest.json"), "Model manifest")) as unknown as ModelManifest;
    if (manifest.format !== "torchvid-model") {
      throw new ModelFormatError(`${join(real, "manifest.json")} is not a torchvid model manifest (format ${JSON.stringify(manifest.format)}): ${CONVERT_HINT}`);
    }
    if (manifest.formatVersion > SUPPORTED_FORMAT_VERSION) {
      throw new ModelFormatError(
        `Model folder ${real} has format version ${manifest.formatVersion}, newer than this torchvid reads (${SUPPORTED_FORMAT_VERSION}): upgrade torchvid or convert with this version`,
      );
    }
    for (const name of COMPONENTS) {
      const entry = manifest.components?.[name];
      if (!entry) throw new ModelFormatError(`${join(real, "manifest.json")} lists no ${name} component: ${CONVERT_HINT} again`);
      const file = join(real, entry.file);
      const size = statOrExplain(file, "Model file", `is missing: ${CONVERT_HINT} again`).size;
      try {
        accessSync(file, constants.R_OK);
      } catch (err) {
        throw permissionProblem(err, "Model file", file) ?? err;
      }
      if (size !== entry.bytes) {
        throw new ModelFormatError(`Model file ${file} has ${size} bytes but the manifest says ${entry.bytes}: the file is truncated or was replaced; ${CONVERT_HINT} again`);
      }
    }
    const [unet, vae, textEncoder, scheduler] = await Promise.all([
      readJson(join(real, "configs", "unet.json"), "UNet config"),
      readJson(join(real, "configs", "vae.json"), "VAE config"),
      readJson(join(real, "configs", "text_encoder.json"), "Text encoder config"),
      readJson(join(real, "scheduler", "scheduler_config.json"), "Scheduler config"),
    ]);
    checkConfigValues({ dir: real, unet, vae, textEncoder });
    return new ModelFolder(real, manifest, unet, vae, textEncoder, scheduler);
  }

  get tokenizerDir(): string {
    return join(this.dir, "tokenizer");
  }

  file(component: ComponentName): string {
    return join(this.dir, this.manifest.components[component].file);
  }

  /** Recomputes every file's sha256 and compares with the manifest (slow for big models). */
  async verifyChecksums(): Promise<void> {
    for (const name of COMPONENTS) {
      const file = this.file(name);
      const hash = createHash("sha256");
      await new Promise<void>((resolve, reject) => {
        createReadStream(file)
          .on("data", (chunk) => hash.update(chunk))
          .on("end", resolve)
          .on("error", reject);
      });
      const digest = hash.digest("hex");
      if (digest !== this.manifest.components[name].sha256) {
        throw new ModelFormatError(`Model file ${file} is corrupt (sha256 ${digest.slice(0, 12)}… differs from the manifest): ${CONVERT_HINT} again`);
      }
    }
  }

  /** Loads one component: a module of its own (never shared with an earlier load), its weights checked against the configs. */
  async load(component: ComponentName, device: Device, dtype: DType): Promise<TorchModule> {
    const file = this.file(component);
    let module: TorchModule;
    try {
      module = await TorchModule.load(file, { device, dtype });
    } catch (err) {
      throw this.explainLoadFailure(err, file);
    }
    try {
      checkComponentWeights(component, file, module.namedParameters(), { dir: this.dir, unet: this.unetConfig, vae: this.vaeConfig, textEncoder: this.textEncoderConfig });
    } catch (err) {
      module.dispose();
      throw err;
    }
    return module;
  }

  // A TorchScript file written by a newer torch than the running libtorch is the usual cause.
  private explainLoadFailure(err: unknown, file: string): unknown {
    if (!(err instanceof TorchvidError) || err.code !== "ERR_TORCHVID_MODEL_LOAD") return err;
    const runtime = native().info().torchVersion;
    const writer = this.manifest.torchVersion;
    const mm = (v: string) => v.split(".").slice(0, 2).map(Number);
    const [wa, wb] = mm(writer);
    const [ra, rb] = mm(runtime);
    if (wa > ra || (wa === ra && wb > rb)) {
      return new TorchvidError(
        "ERR_TORCHVID_MODEL_LOAD",
        `${err.message}\nThis model folder was written by torch ${writer}, newer than the libtorch ${runtime} torchvid runs on: convert it with a torch <= ${runtime} (e.g. \`torchvid convert --python /usr/bin/python3 ...\`), or build torchvid against libtorch ${writer}.`,
        { cause: err },
      );
    }
    return err;
  }
}

