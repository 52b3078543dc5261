// LoRA through the pipeline: the merged weight equals W + scale * alpha/rank * up @ down
// (computed here in float64), the output changes, and unfusing restores every weight bit for bit.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { TextToVideoSDPipeline } from "../lib/index.ts";
import { makeBuffer } from "./helpers/safetensors-writer.ts";
import { referenceModel } from "./helpers/reference-model.ts";

const UNET_Q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
const TE_Q = "text_model.encoder.layers.0.self_attn.q_proj";
const dir = mkdtempSync(join(tmpdir(), "torchvid-lora-"));
const small = { prompt: "a cat", numFrames: 2, height: 16, width: 16, numInferenceSteps: 2, seed: 1, outputType: "float" } as const;

function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 12.9898 + seed) * 0.5));
}

/** PEFT-format LoRA: rank 2, alpha 4 (scale 2) on the UNet, no alpha (scale 1) on the text encoder. */
function writePeftLora(): { path: string; up: number[]; down: number[]; teUp: number[]; teDown: number[] } {
  const up = values(16 * 2, 1);
  const down = values(2 * 16, 2);
  const teUp = values(32 * 2, 3);
  const teDown = values(2 * 32, 4);
  const path = join(dir, "peft.safetensors");
  writeFileSync(
    path,
    makeBuffer({
      [`unet.${UNET_Q}.lora_A.weight`]: { shape: [2, 16], values: down },
      [`unet.${UNET_Q}.lora_B.weight`]: { shape: [16, 2], values: up },
      [`unet.${UNET_Q}.alpha`]: { shape: [], values: [4] },
      [`text_encoder.${TE_Q}.lora_A.weight`]: { shape: [2, 32], values: teDown },
      [`text_encoder.${TE_Q}.lora_B.weight`]: { shape: [32, 2], values: teUp },
    }),
  );
  return { path, up, down, teUp, teDown };
}

function expectedMerge(w: Float32Array, up: number[], down: number[], rows: number, cols: number, scale: number): Float64Array {
  const out = new Float64Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < 2; k++) acc += up[r * 2 + k] * down[k * cols + c];
      out[r * cols + c] = w[r * cols + c] + scale * acc;
    }
  }
  return out;
}

let pipe: TextToVideoSDPipeline;
before(async () => {
  // A pipeline of its own: LoRA edits its weights in place.
  pipe = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu", dtype: "float32" });
});

describe("LoRA", () => {
  it("fuses W + lora_scale * alpha/rank * up @ down into the UNet and text encoder, and unfuses exactly", async () => {
    const lora = writePeftLora();
    const unetW = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync() as Float32Array;
    const teW = pipe.textEncoder.module.parameter(`${TE_Q}.weight`).dataSync() as Float32Array;
    const before = (await pipe.generate(small)).frames[0].data;

    await pipe.loadLoraWeights(lora.path, { scale: 0.5 });
    assert.deepEqual(pipe.loras, [{ path: lora.path, scale: 0.5, fused: true }]);
    const mergedUnet = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync() as Float32Array;
    const mergedTe = pipe.textEncoder.module.parameter(`${TE_Q}.weight`).dataSync() as Float32Array;
    const wantUnet = expectedMerge(unetW, lora.up, lora.down, 16, 16, 0.5 * (4 / 2));
    const wantTe = expectedMerge(teW, lora.teUp, lora.teDown, 32, 32, 0.5);
    for (let i = 0; i < wantUnet.length; i++) assert.ok(Math.abs(mergedUnet[i] - wantUnet[i]) < 1e-6, `unet weight ${i}`);
    for (let i = 0; i < wantTe.length; i++) assert.ok(Math.abs(mergedTe[i] - wantTe[i]) < 1e-6, `text encoder weight ${i}`);
    const withLora = (await pipe.generate(small)).frames[0].data;
    assert.notDeepEqual(withLora, before);

    await pipe.unfuseLora();
    assert.deepEqual(pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync(), unetW, "unet weight restored bit for bit");
    assert.deepEqual(pipe.textEncoder.module.parameter(`${TE_Q}.weight`).dataSync(), teW, "text encoder weight restored bit for bit");
    assert.deepEqual((await pipe.generate(small)).frames[0].data, before);

    // fuseLora merges the loaded LoRA again, at lora_scale x its own scale.
    await pipe.fuseLora({ loraScale: 2 });
    const refused = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync() as Float32Array;
    const want = expectedMerge(unetW, lora.up, lora.down, 16, 16, 0.5 * 2 * 2);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(refused[i] - want[i]) < 1e-6);
    await pipe.unloadLoraWeights();
    assert.deepEqual(pipe.loras, []);
    assert.deepEqual(pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync(), unetW);
  });

  it("kohya-format files map onto the same weights", async () => {
    const up = values(16 * 2, 5);
    const down = values(2 * 16, 6);
    const key = `lora_unet_${UNET_Q.replace(/\./g, "_")}`;
    const path = join(dir, "kohya.safetensors");
    writeFileSync(path, makeBuffer({ [`${key}.lora_down.weight`]: { shape: [2, 16], values: down }, [`${key}.lora_up.weight`]: { shape: [16, 2], values: up }, [`${key}.alpha`]: { shape: [], values: [2] } }));
    const w = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync() as Float32Array;
    await pipe.loadLoraWeights(path);
    const merged = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync() as Float32Array;
    const want = expectedMerge(w, up, down, 16, 16, 1);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(merged[i] - want[i]) < 1e-6);
    await pipe.unloadLoraWeights();
    assert.deepEqual(pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync(), w);
  });

  it("a LoRA for modules the model does not have is a clear error and changes nothing", async () => {
    const path = join(dir, "bad.safetensors");
    writeFileSync(path, makeBuffer({ "unet.mid_block.nonexistent.to_q.lora_A.weight": { shape: [2, 16] }, "unet.mid_block.nonexistent.to_q.lora_B.weight": { shape: [16, 2] } }));
    const w = pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync();
    await assert.rejects(pipe.loadLoraWeights(path), /nonexistent/);
    assert.deepEqual(pipe.loras, []);
    assert.deepEqual(pipe.unet.module.parameter(`${UNET_Q}.weight`).dataSync(), w);
    await assert.rejects(pipe.loadLoraWeights(join(dir, "missing.safetensors")), /missing\.safetensors/);
  });
});
