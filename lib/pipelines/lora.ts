/**
 * LoRAs merged into a pipeline's loaded weights. The list lives with the components, so every
 * pipeline sharing them (fromPipe) sees the same LoRAs. Every change takes a write turn on the
 * weights' gate (asked for when the method is called): it waits for the generations already
 * running, and the ones started after it see it. The edits run in a device turn, so a forward
 * started outside generate() never sees half-merged weights.
 */
import { fuseLora, readLora, type FusedLora, type LoraComponent, type LoraPatch } from "../lora/index.ts";
import type { Tensor } from "../tensor.ts";
import { deviceQueue } from "../module.ts";
import type { PipelineComponents } from "./load.ts";

export interface LoadedLora {
  path: string;
  patches: LoraPatch[];
  scale: number;
  fused: FusedLora | null;
}

type LoraOwner = Pick<PipelineComponents, "unet" | "textEncoder" | "gate" | "loras">;

function lookup(c: LoraOwner): (component: LoraComponent, name: string) => Tensor {
  return (component, name) => (component === "unet" ? c.unet : c.textEncoder).module.parameter(name);
}

/**
 * A write turn on the weights, then a turn on the device they are on now and on the CPU (where
 * the backups of the original weights go), both taken at once so no move can deadlock with it.
 */
function editWeights<T>(c: LoraOwner, job: () => T | Promise<T>): Promise<T> {
  return c.gate.write(() => deviceQueue.run([c.unet.device, "cpu"], job));
}

/** Reads a LoRA file (started now, while earlier calls still run) and merges it at `scale`. */
export function addLora(c: LoraOwner, path: string, scale: number): Promise<void> {
  const names = {
    unet: c.unet.module.namedParameters().map((p) => p.name),
    text_encoder: c.textEncoder.module.namedParameters().map((p) => p.name),
  };
  const reading = readLora(path, names);
  // Its failure is reported by the write turn below; this only keeps it from counting as unhandled meanwhile.
  reading.catch(() => undefined);
  return editWeights(c, async () => {
    const { patches } = await reading;
    const lora: LoadedLora = { path, patches, scale, fused: null };
    lora.fused = await fuseLora(patches, lookup(c), { scale });
    c.loras.push(lora);
  });
}

/** Merges the LoRAs that are not merged (after unfuse) at `factor` x their own scale. */
export function fuseAll(c: LoraOwner, factor: number): Promise<void> {
  return editWeights(c, async () => {
    for (const lora of c.loras) {
      if (!lora.fused) lora.fused = await fuseLora(lora.patches, lookup(c), { scale: lora.scale * factor });
    }
  });
}

function unfuseNow(c: LoraOwner): void {
  // Newest first: each restores the weights it found.
  for (const lora of [...c.loras].reverse()) {
    lora.fused?.unfuse();
    lora.fused = null;
  }
}

/** Restores the original weights exactly; the LoRAs stay loaded. */
export function unfuseAll(c: LoraOwner): Promise<void> {
  return editWeights(c, () => unfuseNow(c));
}

/** Unfuses and forgets every LoRA. */
export function removeAll(c: LoraOwner): Promise<void> {
  return editWeights(c, () => {
    unfuseNow(c);
    c.loras.length = 0;
  });
}

/** Frees the CPU copies of the original weights (the weights themselves are about to be freed). */
export function forgetLoras(c: LoraOwner): void {
  for (const lora of c.loras) lora.fused?.dispose();
  c.loras.length = 0;
}
