/** The exported CLIPTextModel: token ids in, hidden states out. */
import type { TorchModule } from "../module.ts";
import { Tensor } from "../tensor.ts";
import { ModuleComponent } from "./component.ts";
import type { WeightGate } from "./weight-gate.ts";

export class CLIPTextModel extends ModuleComponent {
  readonly config: Readonly<Record<string, unknown>>;

  constructor(module: TorchModule, config: Record<string, unknown>, gate?: WeightGate) {
    super(module, gate);
    this.config = config;
  }

  get numHiddenLayers(): number {
    return Number(this.config.num_hidden_layers ?? 12);
  }

  /**
   * Encodes token ids [B, S] (no attention mask, as the ModelScope pipelines do). `clipSkip` = k
   * takes the hidden states k layers before the last, through the final layer norm.
   */
  async encode(ids: readonly number[][], clipSkip = 0): Promise<Tensor> {
    const length = ids[0].length;
    const flat = new BigInt64Array(ids.length * length);
    ids.forEach((row, i) => row.forEach((id, j) => (flat[i * length + j] = BigInt(id))));
    const input = Tensor.from(flat, [ids.length, length], { device: this.device as never });
    try {
      return await this.module.forwardTensor(input, clipSkip);
    } finally {
      input.dispose();
    }
  }
}
