// Pipeline lifetimes: dispose() waits for running calls, frees the weights when the last pipeline
// sharing them (fromPipe) is disposed, and a disposed pipeline says so with ERR_TORCHVID_DISPOSED.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { TextToVideoSDPipeline, TorchvidError, VideoToVideoSDPipeline } from "../lib/index.ts";

const model = fileURLToPath(new URL("../models/tiny", import.meta.url));
const skip = existsSync(join(model, "manifest.json")) ? false : "models/tiny missing: run `npm run setup`";
const small = { prompt: "a corgi", seed: 1, numInferenceSteps: 2, numFrames: 2, height: 16, width: 16, outputType: "latent" } as const;

const isDisposed = (e: unknown) => e instanceof TorchvidError && e.code === "ERR_TORCHVID_DISPOSED" && /was disposed: load a new one with \w+\.fromPretrained\(\)/.test(e.message);

describe("dispose", { skip }, () => {
  it("waits for the calls already running, then frees the weights; later calls reject with ERR_TORCHVID_DISPOSED", async () => {
    const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    const want = (await pipe.generate(small)).latents.data;
    const running = pipe.generate(small);
    const disposing = pipe.dispose();
    assert.equal(pipe.disposed, true);
    assert.equal(pipe.unet.module.disposed, false, "the running call still has its weights");
    await assert.rejects(pipe.generate(small), isDisposed);
    assert.deepEqual((await running).latents.data, want);
    await disposing;
    for (const m of [pipe.unet.module, pipe.textEncoder.module, pipe.vae.module, pipe.vae.encoder]) assert.equal(m.disposed, true);
    await assert.rejects(pipe.loadLoraWeights("/nonexistent.safetensors"), isDisposed);
    await assert.rejects(pipe.unfuseLora(), isDisposed);
    await assert.rejects(pipe.encodePrompt({ prompt: "x", doClassifierFreeGuidance: false }), isDisposed);
    assert.throws(() => pipe.enableVaeSlicing(), isDisposed);
    assert.throws(() => TextToVideoSDPipeline.fromPipe(pipe), isDisposed);
    assert.throws(() => VideoToVideoSDPipeline.fromPipe(pipe), isDisposed);
    await pipe.dispose(); // idempotent
  });

  it("weights shared with fromPipe live until the last pipeline using them is disposed", async () => {
    const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    const t2v = TextToVideoSDPipeline.fromPipe(v2v);
    const want = (await pipe.generate(small)).latents.data;
    await pipe.dispose();
    await v2v.dispose();
    assert.equal(t2v.unet.module.disposed, false);
    assert.deepEqual((await t2v.generate(small)).latents.data, want);
    await t2v.dispose();
    assert.equal(t2v.unet.module.disposed, true);
  });

  it("Symbol.asyncDispose disposes (await using)", async () => {
    const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    await pipe[Symbol.asyncDispose]();
    assert.equal(pipe.unet.module.disposed, true);
    await assert.rejects(pipe.generate(small), isDisposed);
  });
});

describe("per-pipeline memory options", { skip }, () => {
  it("VAE slicing and offload belong to the pipeline, not to the weights fromPipe shares", async () => {
    const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    try {
      const other = TextToVideoSDPipeline.fromPipe(pipe);
      other.enableVaeSlicing();
      other.enableModelCpuOffload();
      assert.equal(pipe.vaeSlicing, false);
      assert.equal(pipe.modelCpuOffload, false);
      assert.equal(other.vaeSlicing, true);
    } finally {
      await pipe.dispose();
    }
  });
});
