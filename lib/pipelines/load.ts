/**
 * Loading a model folder into the components a pipeline runs on. Every load owns its weights:
 * two `fromPretrained()` calls on one folder give independent pipelines; `fromPipe` shares a
 * loaded set on purpose (and counts its users, so the weights are freed with the last one).
 */
import { TorchvidError } from "../errors.ts";
import type { TorchModule } from "../module.ts";
import { CLIPTokenizer } from "../tokenizer/index.ts";
import { checkDType, checkDevice, type DType, type Device } from "../tensor.ts";
import { defaultDevice } from "../runtime.ts";
import { schedulerFromConfig, type Scheduler } from "../schedulers/index.ts";
import { ModelFolder } from "../models/model-folder.ts";
import { UNet3DConditionModel } from "../models/unet.ts";
import { CLIPTextModel } from "../models/text-encoder.ts";
import { AutoencoderKL } from "../models/vae.ts";
import { WeightGate } from "../models/weight-gate.ts";
import { invalidParameter } from "../validate.ts";
import type { LoadedLora } from "./lora.ts";

export interface FromPretrainedOptions {
  /** "cuda" (or "cuda:N") or "cpu". Defaults to "cuda" when a GPU is usable, else "cpu". */
  device?: Device;
  /**
   * Weights' dtype: "float32", "float16" (CUDA only with this libtorch) or "bfloat16".
   * Defaults to "float16" on CUDA and "float32" on the CPU.
   */
  dtype?: DType;
  /** Re-hash every model file against manifest.json before loading (slow for big models). Defaults to false. */
  verifyChecksums?: boolean;
}

/** The loaded parts of a pipeline (shared between pipelines made with `fromPipe`). */
export interface PipelineComponents {
  folder: ModelFolder;
  tokenizer: CLIPTokenizer;
  textEncoder: CLIPTextModel;
  unet: UNet3DConditionModel;
  vae: AutoencoderKL;
  scheduler: Scheduler;
  device: Device;
  dtype: DType;
  /** Orders weight changes after the calls running on these weights (one gate per loaded set). */
  gate: WeightGate;
  /** The LoRAs merged into these weights (every pipeline sharing them sees the same list). */
  loras: LoadedLora[];
  /** Pipelines using these components that were not disposed yet. */
  users: number;
}

function checkLoadOptions(options: FromPretrainedOptions): { device: Device; dtype: DType } {
  if (typeof options !== "object" || options === null) throw invalidParameter("options", "an object", options, "type");
  const device = options.device === undefined ? defaultDevice() : checkDevice(options.device, "device");
  const dtype = options.dtype === undefined ? (device === "cpu" ? "float32" : "float16") : checkDType(options.dtype, "dtype");
  if (!["float32", "float16", "bfloat16"].includes(dtype)) throw invalidParameter("dtype", `"float32", "float16" or "bfloat16"`, dtype, "range");
  if (device === "cpu" && dtype === "float16") {
    throw new RangeError('dtype "float16" cannot run on the CPU with this libtorch (1.13): use "float32" or "bfloat16" on the CPU, or device "cuda"');
  }
  return { device, dtype };
}

export async function loadComponents(dir: string, options: FromPretrainedOptions = {}): Promise<PipelineComponents> {
  const { device, dtype } = checkLoadOptions(options);
  const folder = await ModelFolder.open(dir);
  if (options.verifyChecksums) await folder.verifyChecksums();
  const tokenizer = await CLIPTokenizer.fromPretrained(folder.tokenizerDir);
  const loads = await Promise.allSettled([
    folder.load("text_encoder", device, dtype),
    folder.load("unet", device, dtype),
    folder.load("vae_encoder", device, dtype),
    folder.load("vae_decoder", device, dtype),
  ]);
  const failed = loads.find((r) => r.status === "rejected");
  if (failed) {
    // Nothing is lost on a failed load: the modules that did load are freed, not leaked.
    for (const r of loads) if (r.status === "fulfilled") r.value.dispose();
    throw (failed as PromiseRejectedResult).reason;
  }
  const [textModule, unetModule, encoderModule, decoderModule] = loads.map((r) => (r as PromiseFulfilledResult<TorchModule>).value);
  const gate = new WeightGate();
  return {
    folder,
    tokenizer,
    textEncoder: new CLIPTextModel(textModule, folder.textEncoderConfig, gate),
    unet: new UNet3DConditionModel(unetModule, folder.unetConfig, gate),
    vae: new AutoencoderKL(encoderModule, decoderModule, folder.vaeConfig, gate),
    scheduler: schedulerFromConfig(folder.schedulerConfig),
    device,
    dtype,
    gate,
    loras: [],
    users: 0,
  };
}

/** A fresh scheduler of the same class and config (no step state: one per call or per pipeline). */
export function cloneScheduler(scheduler: Scheduler): Scheduler {
  return (scheduler.constructor as unknown as { fromConfig(config: unknown): Scheduler }).fromConfig(scheduler.config);
}

/** The error every method of a disposed pipeline throws. */
export function disposedError(className: string): TorchvidError {
  return new TorchvidError("ERR_TORCHVID_DISPOSED", `This ${className} was disposed: load a new one with ${className}.fromPretrained()`);
}
