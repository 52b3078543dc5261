/** TextToVideoSDPipeline: diffusers' text-to-video recipe (ModelScope text-to-video-ms-1.7b, zeroscope). */
import type { Tensor } from "../tensor.ts";
import type { Scheduler } from "../schedulers/index.ts";
import { expectInt } from "../validate.ts";
import { VideoDiffusionPipeline, cloneScheduler, disposedError, loadComponents, randnTensor, resolveGenerators, type FromPretrainedOptions } from "./base.ts";
import { resolveModelFolder, type HubOptions } from "../hub/resolve.ts";
import { checkOptionNames, type GenerateOptions, type LatentOutput, type VideoOutput } from "./options.ts";

export class TextToVideoSDPipeline extends VideoDiffusionPipeline {
  /**
   * Loads a model folder written by `torchvid convert` (weights of its own, even from a folder
   * loaded before), or a Hub model id ("org/name", downloaded and converted once).
   */
  static async fromPretrained(dir: string, options: FromPretrainedOptions & HubOptions = {}): Promise<TextToVideoSDPipeline> {
    return new TextToVideoSDPipeline(await loadComponents(await resolveModelFolder(dir, options), options));
  }

  /**
   * A text-to-video pipeline over the weights another pipeline already loaded (no reload, no
   * copy): LoRA and chunking changes apply to both; the weights are freed when both are disposed.
   */
  static fromPipe(pipe: VideoDiffusionPipeline): TextToVideoSDPipeline {
    if (pipe.disposed) throw disposedError(pipe.constructor.name);
    const copy = new TextToVideoSDPipeline(pipe.components);
    copy.scheduler = cloneScheduler(pipe.scheduler);
    return copy;
  }

  /** Generates videos; see GenerateOptions for every parameter and its default. */
  generate(options: GenerateOptions & { outputType: "latent" }): Promise<LatentOutput>;
  generate(options: GenerateOptions): Promise<VideoOutput>;
  async generate(options: GenerateOptions): Promise<VideoOutput | LatentOutput> {
    this.checkLive();
    // 1. Check inputs before any model runs.
    if (typeof options !== "object" || options === null) throw new TypeError("generate() takes an options object, e.g. { prompt: \"...\" }");
    checkOptionNames(options);
    const common = this.commonOptions(options);
    const defaultSize = this.unet.sampleSize * this.vaeScaleFactor;
    const height = this.checkSize(options.height ?? defaultSize, "height");
    const width = this.checkSize(options.width ?? defaultSize, "width");
    const numFrames = expectInt(options.numFrames ?? 16, "numFrames", { min: 1 });
    const shape = [common.batch, this.vae.latentChannels, numFrames, height / this.vaeScaleFactor, width / this.vaeScaleFactor];
    if (options.latents && options.latents.shape.join() !== shape.join()) {
      throw new RangeError(`latents must have shape [${shape}] for these options but have [${options.latents.shape}]`);
    }
    const generator = resolveGenerators(options, common.batch);

    // 2-8. Prompts, then timesteps and noise scaled by the scheduler's initial sigma, denoise, decode
    // (on this call's own copy of the scheduler, taken now).
    return this.withCall((call) =>
      this.run(call, options, common, generator, async () => {
        call.scheduler.setTimesteps(common.numInferenceSteps);
        return { latents: await this.prepareLatents(shape, generator, options.latents, call.scheduler), timesteps: call.scheduler.timesteps };
      }),
    );
  }

  /** Initial latents [B, 4, F, h, w] exactly as diffusers' prepare_latents (scaled by `scheduler`'s init sigma). */
  async prepareLatents(shape: number[], generator: Parameters<typeof randnTensor>[1], given?: Tensor, scheduler: Scheduler = this.scheduler): Promise<Tensor> {
        const sigma = scheduler.initNoiseSigma;
    // A moved handle may alias the caller's tensor: always hand the loop a tensor of its own.
    const raw = given ? await given.toDevice(this.device) : await randnTensor(shape, generator, this.device);
    if (sigma === 1 && !given) return raw;
    const scaled = raw.mul(sigma);
    raw.dispose();
    return scaled;
  }
}
