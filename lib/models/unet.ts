/** The exported UNet3DConditionModel: noise prediction, and forward chunking as a run-time setting. */
import { onDevice, type TorchModule } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { expectInt, expectOneOf } from "../validate.ts";
import { ModuleComponent } from "./component.ts";
import { explainForwardFailure } from "./forward-errors.ts";
import type { WeightGate } from "./weight-gate.ts";

export interface ForwardChunkingOptions {
  /**
   * Rows of the feed-forward input processed at once in every transformer block. Smaller uses less
   * memory; the result never changes. Defaults to 1 (as diffusers).
   */
  chunkSize?: number;
  /** The dimension to chunk: 0 = batch (x frames), 1 = tokens. Defaults to 0 (as diffusers). */
  dim?: 0 | 1;
}

export class UNet3DConditionModel extends ModuleComponent {
  /** The diffusers config.json of this UNet (snake_case keys). */
  readonly config: Readonly<Record<string, unknown>>;
  #chunking: { chunkSize: number; dim: 0 | 1 } | null = null;

  constructor(module: TorchModule, config: Record<string, unknown>, gate?: WeightGate) {
    super(module, gate);
    this.config = config;
  }

  get inChannels(): number {
    return Number(this.config.in_channels ?? 4);
  }
  get sampleSize(): number {
    return Number(this.config.sample_size ?? 32);
  }
  /** Latent sizes must be multiples of this (2^(down blocks - 1)). */
  get spatialMultiple(): number {
    const blocks = (this.config.block_out_channels as number[] | undefined)?.length ?? 4;
    return 2 ** (blocks - 1);
  }

  /**
   * Predicts the noise for latents [B, C, F, h, w] at `timestep` (a number, or a 0-dim tensor
   * already on the device), conditioned on [B, 77, D] embeddings.
   */
  async forward(sample: Tensor, timestep: number | Tensor, encoderHiddenStates: Tensor): Promise<Tensor> {
    return this.#withTimestep(sample, timestep, encoderHiddenStates, (t) => this.module.forwardTensor(sample, t, encoderHiddenStates));
  }

  /**
   * Classifier-free guidance in one device task: `sample` [B, C, F, h, w] goes in twice (uncond
   * half first) with [2B, 77, D] embeddings (uncond first), and the prediction comes back as
   * uncond + guidanceScale * (text - uncond), the same floats as `forward` on the doubled batch
   * followed by that combination. With guidanceScale <= 1 (no guidance, as in the pipelines) it
   * is a plain forward of `sample` with [B, 77, D] embeddings. `forwardMs` is the UNet's own time
   * on the device thread.
   */
  async forwardGuided(sample: Tensor, timestep: number | Tensor, encoderHiddenStates: Tensor, guidanceScale: number): Promise<{ prediction: Tensor; forwardMs: number }> {
    const cfg = guidanceScale > 1;
    const shape = cfg ? [sample.shape[0] * 2, ...sample.shape.slice(1)] : sample.shape;
    return this.#withTimestep(sample, timestep, encoderHiddenStates, (t) => this.module.runGuided("forward", [sample, t, encoderHiddenStates], cfg ? 0 : -1, guidanceScale), shape);
  }

  async #withTimestep<T>(sample: Tensor, timestep: number | Tensor, encoderHiddenStates: Tensor, run: (t: Tensor) => Promise<T>, sampleShape = sample.shape): Promise<T> {
    const t = timestep instanceof Tensor ? timestep : Tensor.from(new Float32Array([timestep]), [], { device: sample.device as never });
    try {
      return await run(t);
    } catch (err) {
      throw explainForwardFailure(err, {
        model: "The UNet",
        file: this.module.path,
        inputs: { sample: sampleShape, encoder_hidden_states: encoderHiddenStates.shape },
        expects: `sample [B, ${this.inChannels}, frames, height/8, width/8] and encoder_hidden_states [B, 77, ${String(this.config.cross_attention_dim ?? "cross_attention_dim")}]`,
      });
    } finally {
      if (t !== timestep) t.dispose();
    }
  }

  /**
   * Runs every transformer feed-forward in chunks (diffusers `enable_forward_chunking`). The
   * change waits for the generations already running on these weights (they finish unchunked)
   * and every generation started after this call uses it; await the promise to know it is set.
   */
  enableForwardChunking(options: ForwardChunkingOptions = {}): Promise<void> {
    const chunkSize = options.chunkSize === undefined ? 1 : expectInt(options.chunkSize, "chunkSize", { min: 1 });
    const dim = options.dim === undefined ? 0 : (expectOneOf(String(options.dim), "dim", ["0", "1"]) === "0" ? 0 : 1);
    this.#chunking = { chunkSize, dim };
    return this.#setChunkAttributes(dim, chunkSize);
  }

  /** Turns forward chunking off (ordered like enableForwardChunking). */
  disableForwardChunking(): Promise<void> {
    this.#chunking = null;
    return this.#setChunkAttributes(null, 0);
  }

  // The write turn is asked for now (so calls started later see the change); the attributes are
  // set inside a device turn, so a forward started outside generate() never sees half of them.
  #setChunkAttributes(dim: 0 | 1 | null, chunkSize: number): Promise<void> {
    return this.gate.write(() =>
      onDevice(this.device, async () => {
        if (dim !== null) await this.module.setAttrAll("chunk_dim", dim);
        await this.module.setAttrAll("chunk_size", chunkSize);
      }),
    );
  }

  /** The active chunking, or null. */
  get forwardChunking(): { chunkSize: number; dim: 0 | 1 } | null {
    return this.#chunking;
  }
}
