/** Reads reference tensors (safetensors written by the real diffusers run) as Float32Arrays. */
import { join } from "node:path";
import { readSafetensors, toFloat32, toNumbers, type SafetensorsFile } from "../../lib/safetensors.ts";
import { referenceDir } from "./reference-model.ts";

export class ReferenceTensors {
  private constructor(private readonly file: SafetensorsFile, readonly path: string) {}

  static async open(relative: string): Promise<ReferenceTensors> {
    const path = join(referenceDir, relative);
    return new ReferenceTensors(await readSafetensors(path), path);
  }

  has(name: string): boolean {
    return this.file.tensors.has(name);
  }
  shape(name: string): number[] {
    return this.entry(name).shape;
  }
  floats(name: string): Float32Array {
    return toFloat32(this.entry(name));
  }
  ints(name: string): number[] {
    return toNumbers(this.entry(name));
  }
  private entry(name: string) {
    const e = this.file.tensors.get(name);
    if (!e) throw new Error(`${this.path} has no tensor ${name}`);
    return e;
  }
}
