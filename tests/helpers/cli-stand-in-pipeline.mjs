// A stand-in for the pipeline API with the real API's shape, for tests/cli-generate.test.ts: it
// logs every call (one JSON line to $FAKE_LOG) and returns a gradient video. Only the test harness
// tests/helpers/cli-with-stand-in.ts loads it, through main()'s pipelineApi option.
import { appendFileSync } from "node:fs";
const log = (entry) => appendFileSync(process.env.FAKE_LOG, JSON.stringify(entry) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
class Fake {
  constructor(kind, dir, options) {
    this.kind = kind;
    this.scheduler = { name: "default", config: { from: dir } };
    this.unet = { enableForwardChunking: (o) => log({ call: "enableForwardChunking", ...o }) };
    log({ call: "fromPretrained", kind, dir, ...options });
  }
  static async fromPretrained(dir, options) { return new this(this.kind, dir, options); }
  enableModelCpuOffload() { log({ call: "enableModelCpuOffload" }); }
  enableVaeSlicing() { log({ call: "enableVaeSlicing" }); }
  async loadLoraWeights(path, o) { log({ call: "loadLoraWeights", path, ...o }); }
  async dispose() {}
  async generate(o) {
    const { signal, onStep, video, ...rest } = o;
    log({ call: "generate", kind: this.kind, scheduler: this.scheduler, ...rest, seed: String(o.seed),
          video: video && { numFrames: video.numFrames, width: video.width, height: video.height, type: video.data.constructor.name } });
    const numSteps = video ? Math.floor(o.numInferenceSteps * o.strength) : o.numInferenceSteps;
    const t0 = Date.now();
    for (let i = 0; i < numSteps; i++) {
      if (signal?.aborted) throw Object.assign(new Error("aborted"), { code: "ERR_TORCHVID_ABORTED", name: "AbortError" });
      await sleep(Number(process.env.FAKE_STEP_MS ?? 1));
      onStep?.({ step: i, numSteps, timestep: 999 - i, elapsedMs: Date.now() - t0 });
    }
    const numFrames = video ? video.numFrames : o.numFrames, height = video ? video.height : (o.height ?? 64), width = video ? video.width : (o.width ?? 64);
    const data = new Float32Array(numFrames * height * width * 3);
    for (let f = 0, i = 0; f < numFrames; f++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++, i += 3) {
      data[i] = x / width; data[i + 1] = y / height; data[i + 2] = f / numFrames;
    }
    return { frames: [{ numFrames, height, width, data }] };
  }
}
export class TextToVideoSDPipeline extends Fake { static kind = "t2v"; }
export class VideoToVideoSDPipeline extends Fake { static kind = "v2v"; }
export function schedulerFromName(name, config) { log({ call: "schedulerFromName", name, config }); return { name, config }; }
export function info() { return { addonVersion: "fake", torchVersion: "0.0", cudaBuild: false, cudaAvailable: false, devices: [] }; }
