/**
 * What TextToVideoSDPipeline and VideoToVideoSDPipeline share: the loaded components, memory
 * options, LoRA, prompt encoding, the denoising loop and decoding. Each `generate()` is a short
 * numbered recipe over these steps, as in diffusers.
 */
import { AbortError, TorchvidError } from "../errors.ts";
import { checkEmbedShapes } from "./checks.ts";
import { fuseLora, readLora, type FusedLora, type LoraComponent, type LoraPatch } from "../lora/index.ts";
import { CLIPTokenizer } from "../tokenizer/index.ts";
import { Generator, Tensor, checkDType, checkDevice, disposeAll, toSeed, type DType, type Device } from "../tensor.ts";
import { defaultDevice, emptyCache } from "../runtime.ts";
import { schedulerFromConfig, type Scheduler } from "../schedulers/index.ts";
import { ModelFolder } from "../models/model-folder.ts";
import { UNet3DConditionModel } from "../models/unet.ts";
import { CLIPTextModel } from "../models/text-encoder.ts";
import { AutoencoderKL } from "../models/vae.ts";
import type { ModuleComponent } from "../models/component.ts";
import type { Video } from "../video/types.ts";
import { expectInt, expectNumber, expectOneOf, invalidParameter } from "../validate.ts";
import { normalisePrompts, type GenerateOptions, type LatentOutput, type OutputType, type StepEvent, type VideoOutput } from "./options.ts";

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
}

interface LoadedLora {
  path: string;
  patches: LoraPatch[];
  scale: number;
  fused: FusedLora | null;
}

export async function loadComponents(dir: string, options: FromPretrainedOptions = {}): Promise<PipelineComponents> {
  if (typeof options !== "object" || options === null) throw invalidParameter("options", "an object", options);
  const device = options.device === undefined ? defaultDevice() : checkDevice(options.device, "device");
  const dtype = options.dtype === undefined ? (device === "cpu" ? "float32" : "float16") : checkDType(options.dtype, "dtype");
  if (!["float32", "float16", "bfloat16"].includes(dtype)) throw invalidParameter("dtype", `"float32", "float16" or "bfloat16"`, dtype);
  if (device === "cpu" && dtype === "float16") {
    throw new RangeError('dtype "float16" cannot run on the CPU with this libtorch (1.13): use "float32" or "bfloat16" on the CPU, or device "cuda"');
  }
  const folder = await ModelFolder.open(dir);
  if (options.verifyChecksums) await folder.verifyChecksums();
  const tokenizer = await CLIPTokenizer.fromPretrained(folder.tokenizerDir);
  const [textModule, unetModule, encoderModule, decoderModule] = await Promise.all([
    folder.load("text_encoder", device, dtype),
    folder.load("unet", device, dtype),
    folder.load("vae_encoder", device, dtype),
    folder.load("vae_decoder", device, dtype),
  ]);
  return {
    folder,
    tokenizer,
    textEncoder: new CLIPTextModel(textModule, folder.textEncoderConfig),
    unet: new UNet3DConditionModel(unetModule, folder.unetConfig),
    vae: new AutoencoderKL(encoderModule, decoderModule, folder.vaeConfig),
    scheduler: schedulerFromConfig(folder.schedulerConfig),
    device,
    dtype,
  };
}

/** Generators for a batch: one shared (seed / single generator) or one per video (diffusers' list). */
export function resolveGenerators(options: Pick<GenerateOptions, "seed" | "generator">, batch: number): Generator | Generator[] {
  if (options.generator !== undefined && options.seed !== undefined) throw new TypeError("Pass either seed or generator, not both");
  if (options.generator === undefined) {
    const seed = options.seed === undefined ? BigInt(Math.floor(Math.random() * 2 ** 52)) : toSeed(options.seed);
    return new Generator(seed);
  }
  const g = options.generator;
  if (Array.isArray(g)) {
    if (g.length !== batch) throw new RangeError(`Expected ${batch} generators (one per video) but received ${g.length}`);
    g.forEach((x, i) => {
      if (!(x instanceof Generator)) throw invalidParameter(`generator[${i}]`, "a torchvid Generator", x);
    });
    return g;
  }
  if (!(g instanceof Generator)) throw invalidParameter("generator", "a torchvid Generator or an array of them", g);
  return g;
}

/** Noise of `shape` drawn on the CPU like diffusers' randn_tensor (a list of generators draws per batch row). */
export async function randnTensor(shape: number[], generator: Generator | Generator[], device: Device): Promise<Tensor> {
  let noise: Tensor;
  if (Array.isArray(generator)) {
    const rows = generator.map((g) => Tensor.randn([1, ...shape.slice(1)], { generator: g }));
    noise = Tensor.cat(rows, 0);
    disposeAll(rows);
  } else {
    noise = Tensor.randn(shape, { generator });
  }
  if (device === "cpu") return noise;
  const moved = await noise.toDevice(device);
  noise.dispose();
  return moved;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("Generation aborted", { cause: signal.reason });
}

export abstract class VideoDiffusionPipeline {
  readonly tokenizer: CLIPTokenizer;
  readonly textEncoder: CLIPTextModel;
  readonly unet: UNet3DConditionModel;
  readonly vae: AutoencoderKL;
  /** The sampler; replace it with e.g. `DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.config)`. */
  scheduler: Scheduler;
  readonly device: Device;
  readonly dtype: DType;
  readonly modelDir: string;
  #offload = false;
  #loras: LoadedLora[] = [];

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
  }

  /** @internal shared with pipelines made by `fromPipe`. */
  readonly components: PipelineComponents;

  /** Pixels per latent (the VAE's scale factor). */
  get vaeScaleFactor(): number {
    return this.vae.scaleFactor;
  }

  // ---- memory options -------------------------------------------------------------------

  /**
   * Keeps every model on the CPU; each visits the GPU only for its stage (text encoder, UNet,
   * VAE), as diffusers' enable_model_cpu_offload. Output is unchanged. On a CPU pipeline a no-op.
   */
  enableModelCpuOffload(): void {
    this.#offload = true;
  }
  disableModelCpuOffload(): void {
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
    this.vae.useSlicing = true;
  }
  disableVaeSlicing(): void {
    this.vae.useSlicing = false;
  }

  /** Puts `active` on the pipeline's device and, with CPU offload, every other model on the CPU. */
  protected async stage(active: ModuleComponent): Promise<void> {
    if (this.device === "cpu") return;
    if (this.#offload) {
      for (const c of [this.textEncoder, this.unet, this.vae] as ModuleComponent[]) {
        if (c !== active) await c.to("cpu");
      }
    }
    await active.to(this.device);
  }

  /** After a run with offload, everything goes back to the CPU. */
  protected async unstage(): Promise<void> {
    if (this.device === "cpu" || !this.#offload) return;
    for (const c of [this.textEncoder, this.unet, this.vae] as ModuleComponent[]) await c.to("cpu");
    emptyCache();
  }

  // ---- LoRA -------------------------------------------------------------------------------

  /**
   * Loads a LoRA (.safetensors, diffusers/PEFT or kohya format) for the UNet and/or text encoder
   * and merges it into the loaded weights at `scale` (diffusers' lora_scale). Several LoRAs stack.
   * Note: pipelines sharing components (fromPipe, or the same folder loaded twice) share the merge.
   */
  async loadLoraWeights(path: string, options: { scale?: number } = {}): Promise<void> {
    const scale = options.scale === undefined ? 1 : expectNumber(options.scale, "scale");
    const names = {
      unet: this.unet.module.namedParameters().map((p) => p.name),
      text_encoder: this.textEncoder.module.namedParameters().map((p) => p.name),
    };
    const { patches } = await readLora(path, names);
    const lora: LoadedLora = { path, patches, scale, fused: null };
    lora.fused = await fuseLora(patches, this.#parameterLookup, { scale });
    this.#loras.push(lora);
  }

  /** Merges the loaded LoRAs that are not merged (after unfuseLora), at `loraScale` x their own scale. */
  async fuseLora(options: { loraScale?: number } = {}): Promise<void> {
    const factor = options.loraScale === undefined ? 1 : expectNumber(options.loraScale, "loraScale");
    for (const lora of this.#loras) {
      if (!lora.fused) lora.fused = await fuseLora(lora.patches, this.#parameterLookup, { scale: lora.scale * factor });
    }
  }

  /** Restores the original weights exactly; the LoRAs stay loaded (fuseLora merges them again). */
  unfuseLora(): void {
    for (const lora of [...this.#loras].reverse()) {
      lora.fused?.unfuse();
      lora.fused = null;
    }
  }

  /** Unfuses and forgets every LoRA. */
  unloadLoraWeights(): void {
    this.unfuseLora();
    this.#loras = [];
  }

  /** Paths and scales of the loaded LoRAs. */
  get loras(): { path: string; scale: number; fused: boolean }[] {
    return this.#loras.map((l) => ({ path: l.path, scale: l.scale, fused: l.fused !== null }));
  }

  #parameterLookup = (component: LoraComponent, name: string): Tensor =>
    (component === "unet" ? this.unet : this.textEncoder).module.parameter(name);

  // ---- the steps of generate() ----------------------------------------------------------------

  /**
   * Encodes prompts like diffusers' encode_prompt: padded to 77 tokens, no attention mask,
   * repeated per video; with guidance, the negative (or empty) prompts come first:
   * [uncond x B, cond x B].
   */
  async encodePrompt(options: {
    prompt?: string | string[];
    negativePrompt?: string | string[];
    promptEmbeds?: Tensor;
    negativePromptEmbeds?: Tensor;
    numVideosPerPrompt?: number;
    doClassifierFreeGuidance: boolean;
    clipSkip?: number;
  }): Promise<Tensor> {
    const { prompts, negatives } = normalisePrompts(options.prompt, options.negativePrompt, options.promptEmbeds !== undefined);
    const perPrompt = options.numVideosPerPrompt ?? 1;
    const clipSkip = options.clipSkip ?? 0;
    await this.stage(this.textEncoder);
    const owned: Tensor[] = [];
    try {
      let cond: Tensor;
      if (options.promptEmbeds) {
        cond = options.promptEmbeds;
      } else {
        cond = await this.#encodeTexts(prompts!, clipSkip);
        owned.push(cond);
      }
      const batch = cond.shape[0];
      let embeds = cond;
      if (options.doClassifierFreeGuidance) {
        let uncond: Tensor;
        if (options.negativePromptEmbeds) {
          uncond = options.negativePromptEmbeds;
          if (uncond.shape.join() !== cond.shape.join()) {
            throw new RangeError(`negativePromptEmbeds has shape [${uncond.shape}] but promptEmbeds has [${cond.shape}]: they must match`);
          }
        } else {
          const texts = negatives === null ? Array(batch).fill("") : negatives.length === 1 ? Array(batch).fill(negatives[0]) : negatives;
          uncond = await this.#encodeTexts(texts, clipSkip);
          owned.push(uncond);
        }
        embeds = Tensor.cat([uncond, cond], 0);
        owned.push(embeds);
      }
      if (perPrompt > 1) {
        // diffusers repeats each prompt's embedding n times in a row ([a, a, b, b]).
        const halves = options.doClassifierFreeGuidance ? embeds.chunk(2, 0) : [embeds];
        const repeated = halves.map((h) => h.repeatInterleave(perPrompt, 0));
        const out = repeated.length === 2 ? Tensor.cat(repeated, 0) : repeated[0];
        if (repeated.length === 2) disposeAll(repeated);
        return out;
      }
      if (embeds === options.promptEmbeds) return embeds.clone();
      owned.splice(owned.indexOf(embeds), 1);
      return embeds;
    } finally {
      disposeAll(owned);
    }
  }

  async #encodeTexts(texts: string[], clipSkip: number): Promise<Tensor> {
    const ids = texts.map((text) => {
      const enc = this.tokenizer.encode(text, { padding: "max_length", maxLength: this.tokenizer.modelMaxLength, truncation: true });
      if (enc.truncated) {
        process.emitWarning(
          `The prompt was cut to ${this.tokenizer.modelMaxLength} tokens (CLIP's limit); this part is ignored: ${JSON.stringify(enc.overflowText)}`,
          "TorchvidWarning",
        );
      }
      return enc.inputIds;
    });
    return this.textEncoder.encode(ids, clipSkip);
  }

  /**
   * The shared denoising loop: CFG batch, scaled input, UNet, guidance, scheduler step on
   * [B*F, C, h, w] (the layout diffusers hands the scheduler, which fixes the noise layout of
   * stochastic steps). Latents never leave the device. Consumes `latents`.
   */
  protected async denoise(args: {
    latents: Tensor;
    timesteps: readonly number[];
    embeds: Tensor;
    guidanceScale: number;
    generator: Generator | Generator[];
    eta: number;
    onStep?: (e: StepEvent) => void;
    signal?: AbortSignal;
  }): Promise<Tensor> {
    const { timesteps, embeds, guidanceScale, eta, onStep, signal } = args;
    const cfg = guidanceScale > 1;
    // Stochastic steps draw from one generator (diffusers passes the pipeline's generator on; a list uses the first).
    const generator = Array.isArray(args.generator) ? args.generator[0] : args.generator;
    await this.stage(this.unet);
    let latents = args.latents;
    const [b, c, f, h, w] = latents.shape;
    // Every timestep goes to the device once; each step takes a view (no per-step host copy).
    const onHost = Tensor.from(Float32Array.from(timesteps), [timesteps.length]);
    const timestepTensor = this.device === "cpu" ? onHost : await onHost.toDevice(this.device);
    const start = performance.now();
    try {
      for (let i = 0; i < timesteps.length; i++) {
        throwIfAborted(signal);
        const t = timesteps[i];
        const doubled = cfg ? Tensor.cat([latents, latents], 0) : latents;
        const modelInput = this.scheduler.scaleModelInput(doubled, t);
        const tView = timestepTensor.slice(0, i, i + 1).reshape([]);
        let noisePred = await this.unet.forward(modelInput, tView, embeds);
        tView.dispose();
        if (doubled !== latents && doubled !== modelInput) doubled.dispose();
        if (modelInput !== latents) modelInput.dispose();
        if (cfg) {
          const [uncond, text] = noisePred.chunk(2, 0);
          const diff = text.sub(uncond);
          const guided = uncond.axpby(1, guidanceScale, diff);
          disposeAll(uncond, text, diff, noisePred);
          noisePred = guided;
        }
        const toFrames = (x: Tensor) => x.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
        const sample = toFrames(latents);
        const output = toFrames(noisePred);
        const prev = this.scheduler.step(output, t, sample, { generator, eta });
        const next = prev.reshape([b, f, c, h, w]).permute([0, 2, 1, 3, 4]).contiguous();
        disposeAll(sample, output, prev, noisePred, latents);
        latents = next;
        onStep?.({ step: i + 1, numSteps: timesteps.length, timestep: t, elapsedMs: performance.now() - start, latents });
      }
      return latents;
    } catch (err) {
      latents.dispose();
      emptyCache();
      throw err;
    } finally {
      disposeAll(onHost, timestepTensor);
    }
  }

  /** latents [B, 4, F, h, w] -> decoded video [B, 3, F, H, W] in ~[-1, 1], float32 (diffusers' decode_latents). */
  async decodeLatents(latents: Tensor): Promise<Tensor> {
    await this.stage(this.vae);
    const [b, c, f, h, w] = latents.shape;
    const scaled = latents.mul(1 / this.vae.scalingFactor);
    const frames = scaled.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
    const images = await this.vae.decode(frames);
    const [, ch, H, W] = images.shape;
    const video = images.reshape([b, f, ch, H, W]).permute([0, 2, 1, 3, 4]);
    const out = video.dtype === "float32" ? video.contiguous() : video.to("float32");
    disposeAll(scaled, frames, images, video);
    return out;
  }

  /** Decoded video [B, 3, F, H, W] -> one Video per batch row (clamp((x + 1) / 2), [frame, row, col, RGB]). */
  async postprocess(decoded: Tensor, outputType: OutputType): Promise<Video[]> {
    const [b, , f, H, W] = decoded.shape;
    const half = decoded.mul(0.5);
    const unit = half.add(0.5);
    const clamped = unit.clamp(0, 1);
    const hwc = clamped.permute([0, 2, 3, 4, 1]);
    let host: Tensor = hwc;
    const temps = [half, unit, clamped, hwc];
    if (outputType === "uint8") {
      const scaled = hwc.mul(255);
      const rounded = scaled.round();
      host = rounded.to("uint8");
      temps.push(scaled, rounded, host);
    } else {
      host = hwc.contiguous();
      temps.push(host);
    }
    const data = await host.data();
    disposeAll(temps);
    const per = f * H * W * 3;
    return Array.from({ length: b }, (_, i) => ({
      numFrames: f,
      height: H,
      width: W,
      data: outputType === "uint8" ? (data as Uint8Array).slice(i * per, (i + 1) * per) : (data as Float32Array).slice(i * per, (i + 1) * per),
    }));
  }

  /**
   * The part of generate() both pipelines share, after the inputs were checked: encode the
   * prompts, let `prepare` set the timesteps and make the initial latents, denoise, decode.
   * Every tensor is freed on success, failure and abort.
   */
  protected async run(
    options: GenerateOptions,
    common: ReturnType<VideoDiffusionPipeline["commonOptions"]>,
    generator: Generator | Generator[],
    prepare: () => Promise<{ latents: Tensor; timesteps: readonly number[] }>,
  ): Promise<VideoOutput | LatentOutput> {
    throwIfAborted(options.signal);
    // Guidance doubles the batch: [uncond, cond].
    const doClassifierFreeGuidance = common.guidanceScale > 1;
    const embeds = await this.encodePrompt({ ...options, numVideosPerPrompt: common.numVideosPerPrompt, doClassifierFreeGuidance, clipSkip: common.clipSkip });
    let prepared: { latents: Tensor; timesteps: readonly number[] } | undefined;
    try {
      prepared = await prepare();
      const final = await this.denoise({
        latents: prepared.latents,
        timesteps: prepared.timesteps,
        embeds,
        guidanceScale: common.guidanceScale,
        generator,
        eta: common.eta,
        onStep: options.onStep,
        signal: options.signal,
      });
      return await this.finish(final, common.outputType, options.signal);
    } catch (err) {
      prepared?.latents.dispose();
      await this.unstage();
      throw err;
    } finally {
      embeds.dispose();
    }
  }

  /** Finishes a run: latents out for "latent", else decode + postprocess. Consumes `latents`. */
  protected async finish(latents: Tensor, outputType: OutputType, signal?: AbortSignal): Promise<VideoOutput | LatentOutput> {
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
      const decoded = await this.decodeLatents(latents);
      try {
        return { frames: await this.postprocess(decoded, outputType) };
      } finally {
        decoded.dispose();
      }
    } finally {
      latents.dispose();
      await this.unstage();
    }
  }

  /** Checks the options every pipeline shares; returns them with defaults applied. */
  protected commonOptions(options: GenerateOptions) {
    const numInferenceSteps = expectInt(options.numInferenceSteps ?? 50, "numInferenceSteps", { min: 1 });
    const guidanceScale = expectNumber(options.guidanceScale ?? 9.0, "guidanceScale");
    const eta = expectNumber(options.eta ?? 0, "eta", { min: 0 });
    const numVideosPerPrompt = expectInt(options.numVideosPerPrompt ?? 1, "numVideosPerPrompt", { min: 1 });
    const outputType = expectOneOf(options.outputType ?? "uint8", "outputType", ["uint8", "float", "latent"] as const);
    let clipSkip = 0;
    if (options.clipSkip !== undefined && options.clipSkip !== null) {
      clipSkip = expectInt(options.clipSkip, "clipSkip", { min: 0, max: this.textEncoder.numHiddenLayers - 1 });
    }
    if (options.onStep !== undefined && typeof options.onStep !== "function") throw invalidParameter("onStep", "a function", options.onStep);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidParameter("signal", "an AbortSignal", options.signal);
    for (const key of ["latents", "promptEmbeds", "negativePromptEmbeds"] as const) {
      if (options[key] !== undefined && !(options[key] instanceof Tensor)) throw invalidParameter(key, "a Tensor", options[key]);
    }
    checkEmbedShapes(options, this.unet);
    const { prompts } = normalisePrompts(options.prompt, options.negativePrompt, options.promptEmbeds !== undefined);
    const batch = (prompts?.length ?? options.promptEmbeds!.shape[0]) * numVideosPerPrompt;
    return { numInferenceSteps, guidanceScale, eta, numVideosPerPrompt, outputType, clipSkip, batch };
  }

  /** Checks a pixel size against the VAE and UNet. */
  protected checkSize(value: number, name: "height" | "width"): number {
    const n = expectInt(value, name, { min: 8 });
    if (n % 8 !== 0 || n % this.vaeScaleFactor !== 0) {
      const step = Math.max(8, this.vaeScaleFactor);
      const below = Math.floor(n / step) * step;
      throw new RangeError(`${name} must be divisible by ${step} but received ${n}: try ${below >= step ? `${below} or ` : ""}${below + step}`);
    }
    return n;
  }

  /** Releases this pipeline's LoRAs; the modules are freed when no pipeline uses them. */
  async dispose(): Promise<void> {
    this.unloadLoraWeights();
  }
}

export { throwIfAborted };

/** A fresh scheduler of the same class and config (so two pipelines never share step state). */
export function cloneScheduler(scheduler: Scheduler): Scheduler {
  return (scheduler.constructor as unknown as { fromConfig(config: unknown): Scheduler }).fromConfig(scheduler.config);
}
