/** The exported AutoencoderKL: an encoder (video-to-video) and a decoder, with VAE slicing. */
import type { TorchModule } from "../module.ts";
import { Tensor, disposeAll } from "../tensor.ts";
import { TorchvidError } from "../errors.ts";
import { ModuleComponent } from "./component.ts";
import { explainForwardFailure } from "./forward-errors.ts";
import type { WeightGate } from "./weight-gate.ts";

export class AutoencoderKL extends ModuleComponent {
  readonly config: Readonly<Record<string, unknown>>;
  readonly encoder: TorchModule;
  /**
   * Decode (and encode) one image at a time instead of all frames at once: the default of
   * decode()/encode(). Pipelines pass their own setting (enableVaeSlicing) per call instead.
   */
  useSlicing = false;

  constructor(encoder: TorchModule, decoder: TorchModule, config: Record<string, unknown>, gate?: WeightGate) {
    super(decoder, gate);
    this.encoder = encoder;
    this.config = config;
  }

  override get modules(): TorchModule[] {
    return [this.encoder, this.module];
  }

  /** Latents are multiplied by this after encoding (0.18215 for the ModelScope VAE). */
  get scalingFactor(): number {
    return Number(this.config.scaling_factor ?? 0.18215);
  }
  /** Pixels per latent along each side: 2^(blocks - 1). */
  get scaleFactor(): number {
    return 2 ** (((this.config.block_out_channels as number[] | undefined)?.length ?? 4) - 1);
  }
  get latentChannels(): number {
    return Number(this.config.latent_channels ?? 4);
  }

  /** Decodes latents [N, 4, h, w] (already divided by the scaling factor) to images [N, 3, H, W] in ~[-1, 1]. */
  async decode(latents: Tensor, options: { slicing?: boolean } = {}): Promise<Tensor> {
    try {
      return await this.#sliced(latents, options.slicing ?? this.useSlicing, async (z) => this.module.forwardTensor(z));
    } catch (err) {
      throw explainForwardFailure(err, {
        model: "The VAE decoder",
        file: this.module.path,
        inputs: { latents: latents.shape },
        expects: `latents [N, ${this.latentChannels}, height/${this.scaleFactor}, width/${this.scaleFactor}]`,
      });
    }
  }

  /** Encodes images [N, 3, H, W] in [-1, 1] to the latent distribution's mean and std. */
  async encode(images: Tensor, options: { slicing?: boolean } = {}): Promise<{ mean: Tensor; std: Tensor }> {
    const means: Tensor[] = [];
    const stds: Tensor[] = [];
    const parts = options.slicing ?? this.useSlicing ? images.chunk(images.shape[0], 0) : [images];
    try {
      for (const part of parts) {
        const out = await this.encoder.forward(part);
        if (!Array.isArray(out) || out.length !== 2 || !(out[0] instanceof Tensor) || !(out[1] instanceof Tensor)) {
          throw new TorchvidError("ERR_TORCHVID_FORWARD", `${this.encoder.path} must return (mean, std): re-run \`torchvid convert\``);
        }
        means.push(out[0]);
        stds.push(out[1]);
      }
      if (parts.length === 1) return { mean: means[0], std: stds[0] };
      return { mean: Tensor.cat(means, 0), std: Tensor.cat(stds, 0) };
    } finally {
      if (parts.length > 1) disposeAll(means, stds, parts);
    }
  }

  async #sliced(input: Tensor, slicing: boolean, run: (x: Tensor) => Promise<Tensor>): Promise<Tensor> {
    if (!slicing || input.shape[0] === 1) return run(input);
    const parts = input.chunk(input.shape[0], 0);
    const outs: Tensor[] = [];
    try {
      for (const p of parts) outs.push(await run(p));
      return Tensor.cat(outs, 0);
    } finally {
      disposeAll(parts, outs);
    }
  }
}
