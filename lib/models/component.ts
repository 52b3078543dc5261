/** What every model component shares: one or more TorchScript modules that can move between devices. */
import type { TorchModule } from "../module.ts";
import type { Device } from "../tensor.ts";

export class ModuleComponent {
  constructor(readonly module: TorchModule) {}

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
}
