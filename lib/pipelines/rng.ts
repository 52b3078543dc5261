/** Random numbers as diffusers draws them: generators per batch and randn_tensor's CPU draws. */
import { Generator, Tensor, disposeAll, toSeed, type Device } from "../tensor.ts";
import { invalidParameter } from "../validate.ts";
import type { GenerateOptions } from "./options.ts";

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
      if (!(x instanceof Generator)) throw invalidParameter(`generator[${i}]`, "a torchvid Generator", x, "type");
    });
    return g;
  }
  if (!(g instanceof Generator)) throw invalidParameter("generator", "a torchvid Generator or an array of them", g, "type");
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
