/**
 * Pipelines loaded once per model and reused by every job. Each job gets its own light copy
 * (`fromPipe`: same weights, its own scheduler), so a job's scheduler choice never leaks into
 * the next. At most `maxModels` models stay loaded; the least recently used other one goes.
 */
import { resolve } from "node:path";
import { TextToVideoSDPipeline, type Device } from "../index.ts";

export class PipelineCache {
  readonly defaultModel: string;
  readonly device: Device | undefined;
  readonly maxModels: number;
  #loaded = new Map<string, Promise<TextToVideoSDPipeline>>();

  constructor(options: { defaultModel: string; device?: Device; maxModels?: number }) {
    this.defaultModel = resolve(options.defaultModel);
    this.device = options.device;
    this.maxModels = options.maxModels ?? 2;
  }

  /** The folder a request's `model` names (relative paths from the server's working folder). */
  resolveModel(model: string | undefined): string {
    return model === undefined ? this.defaultModel : resolve(model);
  }

  /** The loaded text-to-video pipeline of `model`; loads it the first time. A failed load is forgotten, so a later job retries. */
  get(model: string | undefined): Promise<TextToVideoSDPipeline> {
    const dir = this.resolveModel(model);
    let pipe = this.#loaded.get(dir);
    if (pipe) {
      // Most recently used last.
      this.#loaded.delete(dir);
      this.#loaded.set(dir, pipe);
      return pipe;
    }
    pipe = TextToVideoSDPipeline.fromPretrained(dir, this.device === undefined ? {} : { device: this.device });
    this.#loaded.set(dir, pipe);
    pipe.catch(() => {
      if (this.#loaded.get(dir) === pipe) this.#loaded.delete(dir);
    });
    this.#evict();
    return pipe;
  }

  #evict(): void {
    for (const [dir, pipe] of this.#loaded) {
      if (this.#loaded.size <= this.maxModels) break;
      if (dir === this.defaultModel) continue;
      this.#loaded.delete(dir);
      void pipe.then((p) => p.dispose()).catch(() => {});
    }
  }

  get loadedModels(): string[] {
    return [...this.#loaded.keys()];
  }
}
