/**
 * What TextToVideoSDPipeline and VideoToVideoSDPipeline share: the loaded components, memory
 * options, LoRA, and the run of one `generate()` call over the steps in load.ts, rng.ts,
 * offload.ts, lora.ts, prompt.ts, denoise.ts, decode.ts and checks.ts. Each `generate()` is a
 * short numbered recipe over these steps, as in diffusers.
 *
 * Concurrency: a call takes its own copy of the scheduler and of the memory options when it
 * starts, and a read turn on the weights' gate for its whole run; weight changes (LoRA,
 * chunking, dispose) take write turns. So calls that overlap give exactly what each gives alone,
 * and a change made while a call runs only reaches the calls that start after it.
 */
import { TorchvidError } from "../errors.ts";
import { Tensor, type DType, type Device, type Generator } from "../tensor.ts";
import type { Scheduler } from "../schedulers/index.ts";
import type { UNet3DConditionModel } from "../models/unet.ts";
import type { CLIPTextModel } from "../models/text-encoder.ts";
import type { AutoencoderKL } from "../models/vae.ts";
import type { CLIPTokenizer } from "../tokenizer/index.ts";
import type { Video } from "../video/types.ts";
import { expectNumber } from "../validate.ts";
import { checkCommonOptions, checkEmbedShapes, checkSize, throwIfAborted, type CommonOptions } from "./checks.ts";
import { decodeLatents, postprocess } from "./decode.ts";
import { denoise } from "./denoise.ts";
import { cloneScheduler, disposedError, type PipelineComponents } from "./load.ts";
import { addLora, forgetLoras, fuseAll, removeAll, unfuseAll } from "./lora.ts";
import { stage, unstage } from "./offload.ts";
import { encodePrompt, type EncodePromptOptions } from "./prompt.ts";
import type { GenerateOptions, LatentOutput, OutputType, VideoOutput } from "./options.ts";

export { loadComponents, cloneScheduler, disposedError, type FromPretrainedOptions, type PipelineComponents } from "./load.ts";
export { resolveGenerators, randnTensor } from "./rng.ts";
export { throwIfAborted } from "./checks.ts";

/** What one call fixed when it started: later changes to the pipeline do not reach it. */
export interface CallState {
  /** The call's own scheduler (a fresh copy of `pipe.scheduler`, freed when the call ends). */
  scheduler: Scheduler;
  offload: boolean;
  vaeSlicing: boolean;
}

export abstract class VideoDiffusionPipeline {
  readonly tokenizer: CLIPTokenizer;
  readonly textEncoder: CLIPTextModel;
  readonly unet: UNet3DConditionModel;
  readonly vae: AutoencoderKL;
  /**
   * The sampler; replace it with e.g. `DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.config)`.
   * Each generate() call runs on its own copy made when the call starts, so replacing it (or
   * changing it) while calls run affects only the calls that start later.
   */
  scheduler: Scheduler;
  readonly device: Device;
  readonly dtype: DType;
  readonly modelDir: string;
  #offload = false;
  #vaeSlicing = false;
  #disposed: Promise<void> | null = null;

  constructor(components: PipelineComponents) {
    this.tokenizer = components.tokenizer;
    this.textEncoder = components.textEncoder;
    this.unet = components.unet;
    this.vae = components.vae;
    this.scheduler = components.scheduler;
    this.device = components.device;
    this.dtype = components.dtype;
    this.modelDir = components.folder.dir;
    this.components = components;
    components.users++;
  }

  /** @internal shared with pipelines made by `fromPipe`. */
  readonly components: PipelineComponents;

  /** Pixels per latent (the VAE's scale factor). */
  get vaeScaleFactor(): number {
    return this.vae.scaleFactor;
  }

  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.#disposed !== null;
  }

  /** Throws ERR_TORCHVID_DISPOSED once dispose() was called. */
  protected checkLive(): void {
    if (this.#disposed) throw disposedError(this.constructor.name);
  }

  // ---- memory options (per pipeline; a call keeps the ones it started with) -------------------

  /**
   * Keeps every model on the CPU; each visits the GPU only for its stage (text encoder, UNet,
   * VAE), as diffusers' enable_model_cpu_offload. Output is unchanged. On a CPU pipeline a no-op.
   * Calls with offload run one at a time on their weights (each stage moves the models).
   */
  enableModelCpuOffload(): void {
    this.checkLive();
    this.#offload = true;
  }
  disableModelCpuOffload(): void {
    this.checkLive();
    this.#offload = false;
  }
  get modelCpuOffload(): boolean {
    return this.#offload;
  }

  /**
   * diffusers' sequential offload streams each submodule's weights to the GPU during the forward.
   * A TorchScript module moves as a whole, so torchvid cannot do this cleanly: use
   * enableModelCpuOffload() with enableVaeSlicing() and forward chunking instead.
   */
  enableSequentialCpuOffload(): never {
    throw new TorchvidError(
      "ERR_TORCHVID_DEVICE",
      "enableSequentialCpuOffload() is not available: exported TorchScript modules move to the GPU as a whole. Use enableModelCpuOffload(), enableVaeSlicing() and unet.enableForwardChunking() to cut memory instead",
    );
  }

  /** Decodes (and encodes) one frame at a time: less memory for long videos, same output. */
  enableVaeSlicing(): void {
    this.checkLive();
    this.#vaeSlicing = true;
  }
  disableVaeSlicing(): void {
    this.checkLive();
    this.#vaeSlicing = false;
  }
  get vaeSlicing(): boolean {
    return this.#vaeSlicing;
  }

  // ---- LoRA (lora.ts) -------------------------------------------------------------------------

  /**
   * Loads a LoRA (.safetensors, diffusers/PEFT or kohya format) for the UNet and/or text encoder
   * and merges it into the loaded weights at `scale` (diffusers' lora_scale). Several LoRAs stack.
   * Pipelines made with fromPipe share the weights, so they share the merge (and this list).
   * The merge waits for running generations; calls started after this one see it.
   */
  loadLoraWeights(path: string, options: { scale?: number } = {}): Promise<void> {
    try {
      this.checkLive();
      const scale = options.scale === undefined ? 1 : expectNumber(options.scale, "scale");
      return addLora(this.components, path, scale);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Merges the loaded LoRAs that are not merged (after unfuseLora), at `loraScale` x their own scale. */
  fuseLora(options: { loraScale?: number } = {}): Promise<void> {
    try {
      this.checkLive();
      const factor = options.loraScale === undefined ? 1 : expectNumber(options.loraScale, "loraScale");
      return fuseAll(this.components, factor);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Restores the original weights exactly; the LoRAs stay loaded (fuseLora merges them again). */
  unfuseLora(): Promise<void> {
    return this.disposed ? Promise.reject(disposedError(this.constructor.name)) : unfuseAll(this.components);
  }

  /** Unfuses and forgets every LoRA. */
  unloadLoraWeights(): Promise<void> {
    return this.disposed ? Promise.reject(disposedError(this.constructor.name)) : removeAll(this.components);
  }

  /** Paths and scales of the LoRAs merged into these weights. */
  get loras(): { path: string; scale: number; fused: boolean }[] {
    return this.components.loras.map((l) => ({ path: l.path, scale: l.scale, fused: l.fused !== null }));
  }

  // ---- the steps of generate() ----------------------------------------------------------------

  /**
   * Starts a call: fixes its state now (a copy of the scheduler, the memory options), asks for
   * its turn on the weights now, and runs `body` once granted. With CPU offload the turn is
   * exclusive. Returns a rejected promise on a disposed pipeline.
   */
  protected withCall<T>(body: (call: CallState) => Promise<T>): Promise<T> {
    if (this.#disposed) return Promise.reject(disposedError(this.constructor.name));
    const call: CallState = { scheduler: cloneScheduler(this.scheduler), offload: this.#offload, vaeSlicing: this.#vaeSlicing };
    const gate = this.components.gate;
    const turn = call.offload ? gate.write(() => body(call)) : gate.read().then(async (release) => {
      try {
        return await body(call);
      } finally {
        release();
      }
    });
    return turn.finally(() => call.scheduler.dispose());
  }

  /**
   * Encodes prompts like diffusers' encode_prompt: padded to 77 tokens, no attention mask,
   * repeated per video; with guidance, the negative (or empty) prompts come first:
   * [uncond x B, cond x B].
   */
  encodePrompt(options: EncodePromptOptions): Promise<Tensor> {
    return this.withCall(async (call) => {
      await stage(this, this.textEncoder, call.offload);
      return encodePrompt(this.tokenizer, this.textEncoder, options);
    });
  }

  /** latents [B, 4, F, h, w] -> decoded video [B, 3, F, H, W] in ~[-1, 1], float32 (diffusers' decode_latents). */
  decodeLatents(latents: Tensor): Promise<Tensor> {
    return this.withCall(async (call) => {
      await stage(this, this.vae, call.offload);
      return decodeLatents(this.vae, latents, call.vaeSlicing);
    });
  }

  /** Decoded video [B, 3, F, H, W] -> one Video per batch row (clamp((x + 1) / 2), [frame, row, col, RGB]). */
  postprocess(decoded: Tensor, outputType: OutputType): Promise<Video[]> {
    return postprocess(decoded, outputType);
  }

  /**
   * The part of generate() both pipelines share, inside a call, after the inputs were checked:
   * encode the prompts, let `prepare` set the call's timesteps and make the initial latents,
   * denoise, decode. Every tensor is freed on success, failure and abort.
   */
  protected async run(
    call: CallState,
    options: GenerateOptions,
    common: CommonOptions,
    generator: Generator | Generator[],
    prepare: () => Promise<{ latents: Tensor; timesteps: readonly number[] }>,
  ): Promise<VideoOutput | LatentOutput> {
    throwIfAborted(options.signal);
    // Guidance doubles the batch: [uncond, cond].
    const doClassifierFreeGuidance = common.guidanceScale > 1;
    let embeds: Tensor | undefined;
    let prepared: { latents: Tensor; timesteps: readonly number[] } | undefined;
    try {
      await stage(this, this.textEncoder, call.offload);
      embeds = await encodePrompt(this.tokenizer, this.textEncoder, { ...options, numVideosPerPrompt: common.numVideosPerPrompt, doClassifierFreeGuidance, clipSkip: common.clipSkip });
      prepared = await prepare();
      await stage(this, this.unet, call.offload);
      const final = await denoise({
        unet: this.unet,
        scheduler: call.scheduler,
        device: this.device,
        latents: prepared.latents,
        timesteps: prepared.timesteps,
        embeds,
        guidanceScale: common.guidanceScale,
        generator,
        eta: common.eta,
        onStep: options.onStep,
        signal: options.signal,
      });
      prepared = undefined;
      return await this.finish(call, final, common.outputType, options.signal);
    } finally {
      prepared?.latents.dispose();
      embeds?.dispose();
      await unstage(this, call.offload);
    }
  }

  /** Finishes a run: latents out for "latent", else decode + postprocess. Consumes `latents`. */
  private async finish(call: CallState, latents: Tensor, outputType: OutputType, signal?: AbortSignal): Promise<VideoOutput | LatentOutput> {
    try {
      if (outputType === "latent") {
        const host = latents.to("float32");
        try {
          return { latents: { shape: latents.shape, data: (await host.data()) as Float32Array } };
        } finally {
          host.dispose();
        }
      }
      throwIfAborted(signal);
      await stage(this, this.vae, call.offload);
      const decoded = await decodeLatents(this.vae, latents, call.vaeSlicing);
      try {
        return { frames: await postprocess(decoded, outputType) };
      } finally {
        decoded.dispose();
      }
    } finally {
      latents.dispose();
    }
  }

  /** Checks the options every pipeline shares; returns them with defaults applied. */
  protected commonOptions(options: GenerateOptions): CommonOptions {
    const common = checkCommonOptions(options, this.textEncoder.numHiddenLayers);
    checkEmbedShapes(options, this.unet);
    return common;
  }

  /** Checks a pixel size against the VAE and UNet. */
  protected checkSize(value: number, name: "height" | "width"): number {
    return checkSize(value, name, this.vaeScaleFactor);
  }

  /**
   * Ends this pipeline: calls already started finish first, later calls reject with
   * ERR_TORCHVID_DISPOSED. The weights are freed when no pipeline made with fromPipe from the
   * same load still uses them (then the LoRAs' backups go too). Idempotent.
   */
  dispose(): Promise<void> {
    if (this.#disposed) return this.#disposed;
    const c = this.components;
    this.#disposed = c.gate.write(() => {
      c.users--;
      if (c.users > 0) return;
      forgetLoras(c);
      c.textEncoder.dispose();
      c.unet.dispose();
      c.vae.dispose();
    });
    return this.#disposed;
  }

  /** `await using pipe = await TextToVideoSDPipeline.fromPretrained(dir)` disposes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
