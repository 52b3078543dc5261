/**
 * VideoToVideoSDPipeline: re-renders a video (diffusers' VideoToVideoSDPipeline), e.g. the
 * zeroscope recipe: generate with zeroscope_v2_576w, then upscale with zeroscope_v2_XL at 1024x576.
 */
import { Tensor, disposeAll } from "../tensor.ts";
import { expectNumber, invalidParameter } from "../validate.ts";
import { assertVideo, type Video } from "../video/types.ts";
import type { Scheduler } from "../schedulers/index.ts";
import { VideoDiffusionPipeline, cloneScheduler, disposedError, loadComponents, randnTensor, resolveGenerators, type FromPretrainedOptions } from "./base.ts";
import { stage } from "./offload.ts";
import { resolveModelFolder, type HubOptions } from "../hub/resolve.ts";
import { checkOptionNames, type ImageInput, type LatentOutput, type VideoOutput, type VideoToVideoOptions } from "./options.ts";

/** Turns the accepted inputs into one uint8/float Video of the requested size. */
async function toVideo(input: VideoToVideoOptions["video"], width: number | undefined, height: number | undefined): Promise<Video> {
  let video: Video;
  if (typeof input === "string") {
    const { readVideo } = await import("../video/index.ts");
    video = await readVideo(input);
  } else if (Array.isArray(input)) {
    const frames = input as readonly ImageInput[];
    if (frames.length === 0) throw new RangeError("Expected at least one frame in video but received an empty array");
    const { width: w, height: h } = frames[0];
    const isFloat = frames[0].data instanceof Float32Array;
    const data = isFloat ? new Float32Array(frames.length * w * h * 3) : new Uint8Array(frames.length * w * h * 3);
    frames.forEach((f, i) => {
      if (typeof f !== "object" || f === null || !(f.data instanceof Uint8Array || f.data instanceof Float32Array)) {
        throw invalidParameter(`video[${i}]`, "an RGB image { width, height, data }", f, "type");
      }
      if (f.width !== w || f.height !== h || f.data.length !== w * h * 3) {
        throw new RangeError(`video[${i}] is ${f.width}x${f.height} with ${f.data.length} values; every frame must be ${w}x${h} RGB (${w * h * 3} values)`);
      }
      if (f.data instanceof Float32Array !== isFloat) throw new TypeError("video frames mix uint8 and float data: use one type");
      data.set(f.data, i * w * h * 3);
    });
    video = { numFrames: frames.length, width: w, height: h, data };
  } else {
    assertVideo(input, "video");
    video = input as Video;
  }
  if ((width !== undefined && width !== video.width) || (height !== undefined && height !== video.height)) {
    const { resizeVideo } = await import("../video/index.ts");
    video = await resizeVideo(video, width ?? video.width, height ?? video.height);
  }
  return video;
}

export class VideoToVideoSDPipeline extends VideoDiffusionPipeline {
  static async fromPretrained(dir: string, options: FromPretrainedOptions & HubOptions = {}): Promise<VideoToVideoSDPipeline> {
    return new VideoToVideoSDPipeline(await loadComponents(await resolveModelFolder(dir, options), options));
  }

  /**
   * A video-to-video pipeline over the weights another pipeline already loaded (no reload, no
   * copy): LoRA and chunking changes apply to both; the weights are freed when both are disposed.
   */
  static fromPipe(pipe: VideoDiffusionPipeline): VideoToVideoSDPipeline {
    if (pipe.disposed) throw disposedError(pipe.constructor.name);
    const copy = new VideoToVideoSDPipeline(pipe.components);
    copy.scheduler = cloneScheduler(pipe.scheduler);
    return copy;
  }

  generate(options: VideoToVideoOptions & { outputType: "latent" }): Promise<LatentOutput>;
  generate(options: VideoToVideoOptions): Promise<VideoOutput>;
  async generate(options: VideoToVideoOptions): Promise<VideoOutput | LatentOutput> {
    this.checkLive();
    // 1. Check inputs.
    if (typeof options !== "object" || options === null) throw new TypeError("generate() takes an options object, e.g. { prompt, video }");
    checkOptionNames(options);
    if (options.video === undefined) throw new TypeError("VideoToVideoSDPipeline.generate needs a video (Video object, array of RGB images, or a file path)");
    if (options.numFrames !== undefined) throw new TypeError("numFrames is set by the input video in video-to-video");
    if (options.latents !== undefined) throw new TypeError("latents cannot be given to video-to-video: the input video sets them");
    const common = this.commonOptions(options);
    if (common.batch !== 1) throw new RangeError(`video-to-video re-renders one video: pass one prompt and numVideosPerPrompt 1 (got a batch of ${common.batch})`);
    const strength = expectNumber(options.strength ?? 0.6, "strength");
    if (!(strength > 0 && strength <= 1)) throw new RangeError(`Expected strength in (0, 1] but received ${strength}`);
    const generator = resolveGenerators(options, common.batch);

    // 2-8. Prompts; strength picks where on the schedule the encoded video is noised to; denoise;
    // decode (on this call's own copy of the scheduler, taken now).
    return this.withCall(async (call) => {
      const video = await toVideo(options.video, options.width, options.height);
      this.checkSize(video.height, "height");
      this.checkSize(video.width, "width");
      return this.run(call, options, common, generator, async () => {
        const scheduler = call.scheduler;
        scheduler.setTimesteps(common.numInferenceSteps);
        const chosen = scheduler.getTimestepsForStrength(common.numInferenceSteps, strength);
        scheduler.setBeginIndex(chosen.beginIndex);
        await stage(this, this.vae, call.offload);
        return { latents: await this.prepareLatents(video, chosen.latentTimestep, generator, scheduler, call.vaeSlicing), timesteps: chosen.timesteps };
      });
    });
  }

  /** Video -> [1, 3, F, H, W] in [-1, 1] (diffusers' preprocess_video: /255, *2 - 1). */
  async preprocess(video: Video): Promise<Tensor> {
    const { numFrames: f, height: h, width: w } = video;
    const host = Tensor.from(video.data, [1, f, h, w, 3]);
    const unit = video.data instanceof Uint8Array ? host.to("float32").div(255) : host.to("float32");
    const signed = unit.mul(2).sub(1);
    const permuted = signed.permute([0, 4, 1, 2, 3]).contiguous();
    disposeAll(host, unit, signed);
    if (this.device === "cpu") return permuted;
    const moved = await permuted.toDevice(this.device);
    permuted.dispose();
    return moved;
  }

  /** diffusers' prepare_latents for video-to-video: VAE posterior sample x scaling factor, then add_noise. */
  async prepareLatents(
    video: Video,
    timestep: number,
    generator: Parameters<typeof randnTensor>[1],
    scheduler: Scheduler = this.scheduler,
    slicing = this.vaeSlicing,
  ): Promise<Tensor> {
        const pixels = await this.preprocess(video);
    const [b, c, f, H, W] = pixels.shape;
    const frames = pixels.permute([0, 2, 1, 3, 4]).reshape([b * f, c, H, W]);
    // generate() staged the VAE already (offload moves the others away); a direct call needs it here.
    await this.vae.to(this.device);
    const { mean, std } = await this.vae.encode(frames, { slicing });
    const posteriorNoise = await randnTensor(mean.shape, generator, this.device);
    const spread = std.mul(posteriorNoise);
    const sample = mean.add(spread);
    const init = sample.mul(this.vae.scalingFactor);
    const noise = await randnTensor(init.shape, generator, this.device);
    const noised = scheduler.addNoise(init, noise, timestep);
    const [, lc, lh, lw] = noised.shape;
    const latents = noised.reshape([b, f, lc, lh, lw]).permute([0, 2, 1, 3, 4]).contiguous();
    disposeAll(pixels, frames, mean, std, posteriorNoise, spread, sample, init, noise, noised);
    return latents;
  }
}
