/** TextToVideoSDPipeline: diffusers' text-to-video recipe (ModelScope text-to-video-ms-1.7b, zeroscope). */
import { Tensor, disposeAll } from "../tensor.ts";
import { expectInt } from "../validate.ts";
import { VideoDiffusionPipeline, cloneScheduler, loadComponents, randnTensor, resolveGenerators, throwIfAborted, type FromPretrainedOptions } from "./base.ts";
import { checkOptionNames, type GenerateOptions, type LatentOutput, type VideoOutput } from "./options.ts";

export class TextToVideoSDPipeline extends VideoDiffusionPipeline {
  /** Loads a model folder written by `torchvid convert`. */
  static async fromPretrained(dir: string, options: FromPretrainedOptions = {}): Promise<TextToVideoSDPipeline> {
    return new TextToVideoSDPipeline(await loadComponents(dir, options));
  }

  /** A text-to-video pipeline over the components another pipeline already loaded. */
  static fromPipe(pipe: VideoDiffusionPipeline): TextToVideoSDPipeline {
    const copy = new TextToVideoSDPipeline(pipe.components);
    copy.scheduler = cloneScheduler(pipe.scheduler);
    return copy;
  }

  /** Generates videos; see GenerateOptions for every parameter and its default. */
  generate(options: GenerateOptions & { outputType: "latent" }): Promise<LatentOutput>;
  generate(options: GenerateOptions): Promise<VideoOutput>;
  async generate(options: GenerateOptions): Promise<VideoOutput | LatentOutput> {
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
    throwIfAborted(options.signal);

    // 2. Guidance doubles the batch: [uncond, cond].
    const doCfg = common.guidanceScale > 1;
    // 3. Prompt embeddings.
    const embeds = await this.encodePrompt({ ...options, numVideosPerPrompt: common.numVideosPerPrompt, doClassifierFreeGuidance: doCfg, clipSkip: common.clipSkip });
    let latents: Tensor | undefined;
    try {
      // 4. Timesteps.
      this.scheduler.setTimesteps(common.numInferenceSteps);
      // 5. Initial latents: noise from the CPU generator, scaled by the scheduler's initial sigma.
      latents = await this.prepareLatents(shape, generator, options.latents);
      // 6-7. Denoise.
      const final = await this.denoise({
        latents,
        timesteps: this.scheduler.timesteps,
        embeds,
        guidanceScale: common.guidanceScale,
        generator,
        eta: common.eta,
        onStep: options.onStep,
        signal: options.signal,
      });
      latents = undefined;
      // 8. Decode and convert.
      return await this.finish(final, common.outputType, options.signal);
    } catch (err) {
      if (latents) latents.dispose();
      await this.unstage();
      throw err;
    } finally {
      embeds.dispose();
    }
  }

  /** Initial latents [B, 4, F, h, w] exactly as diffusers' prepare_latents. */
  async prepareLatents(shape: number[], generator: Parameters<typeof randnTensor>[1], given?: Tensor): Promise<Tensor> {
    const raw = given ? await given.toDevice(this.device) : await randnTensor(shape, generator, this.device);
    const sigma = this.scheduler.initNoiseSigma;
    if (sigma === 1) {
      if (!given) return raw;
      const copy = raw.clone();
      disposeAll(raw === given ? [] : [raw]);
      return copy;
    }
    const scaled = raw.mul(sigma);
    if (raw !== given) raw.dispose();
    return scaled;
  }
}
