/** What every model component shares: one or more TorchScript modules that can move between devices. */
import type { TorchModule } from "../module.ts";
import type { Device } from "../tensor.ts";
import { WeightGate } from "./weight-gate.ts";

export class ModuleComponent {
  /**
   * @param gate the reader/writer gate of the set of weights this component belongs to (one per
   * loaded pipeline, shared by `fromPipe`): weight changes take a write turn on it.
   */
  constructor(
    readonly module: TorchModule,
    readonly gate: WeightGate = new WeightGate(),
  ) {}

  get device(): string {
    return this.module.device;
  }

  /** All modules of this component (the VAE has two). */
  get modules(): TorchModule[] {
    return [this.module];
  }

  /** Moves the weights (CPU offload uses this). */
  async to(device: Device): Promise<void> {
    for (const m of this.modules) if (m.device !== device) await m.to(device);
  }

  get nbytes(): number {
    return this.modules.reduce((sum, m) => sum + m.nbytes, 0);
  }

  /** Frees the weights of every module (idempotent). */
  dispose(): void {
    for (const m of this.modules) m.dispose();
  }
}
