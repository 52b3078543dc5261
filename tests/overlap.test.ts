// Calls that overlap give exactly what each gives alone (issue 10's Done-when), and a change made
// while a call runs (scheduler swap, forward chunking, LoRA) reaches only the calls started after
// it. On models/tiny with tiny settings: a few seconds on 2 cores.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { DPMSolverMultistepScheduler, EulerDiscreteScheduler, TextToVideoSDPipeline, type GenerateOptions } from "../lib/index.ts";
import { makeBuffer } from "./helpers/safetensors-writer.ts";

const model = fileURLToPath(new URL("../models/tiny", import.meta.url));
const skip = existsSync(join(model, "manifest.json")) ? false : "models/tiny missing: run `npm run setup`";

/**
 * The four overlapping calls: different seeds, step counts, frame counts, sizes and guidance;
 * two return the final latents (sensitive to every step of the scheduler's history), two the
 * decoded float frames.
 */
const CALLS: GenerateOptions[] = [
  { prompt: "a corgi", seed: 1, numInferenceSteps: 3, numFrames: 2, height: 16, width: 16, guidanceScale: 7.5, outputType: "latent" },
  { prompt: "a cat on a boat", seed: 2, numInferenceSteps: 4, numFrames: 3, height: 16, width: 16, guidanceScale: 1, outputType: "float" },
  { prompt: "rain", negativePrompt: "sun", seed: 3, numInferenceSteps: 2, numFrames: 2, height: 16, width: 32, guidanceScale: 3, outputType: "latent" },
  { prompt: "a corgi", seed: 4, numInferenceSteps: 3, numFrames: 2, height: 32, width: 16, guidanceScale: 9, outputType: "float" },
];

/** The call's output as one array: the final latents, or the first video's float frames. */
async function floats(pipe: TextToVideoSDPipeline, options: GenerateOptions): Promise<Float32Array> {
  if (options.outputType === "latent") return (await pipe.generate({ ...options, outputType: "latent" })).latents.data;
  const { frames } = await pipe.generate({ ...options, outputType: "float" });
  return frames[0].data as Float32Array;
}

function assertClose(got: Float32Array, want: Float32Array, what: string, tolerance = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= tolerance, `${what} differs from the same call run alone by ${worst}`);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** A PEFT LoRA (rank 2) on the tiny UNet's first self-attention query: big enough to change the frames. */
function writeLora(): string {
  const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 12.9898 + seed) * 0.8));
  const key = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
  const path = join(mkdtempSync(join(tmpdir(), "torchvid-overlap-")), "lora.safetensors");
  writeFileSync(
    path,
    makeBuffer({
      [`${key}.lora_A.weight`]: { shape: [2, 16], values: values(32, 1) },
      [`${key}.lora_B.weight`]: { shape: [16, 2], values: values(32, 2) },
      [`${key}.alpha`]: { shape: [], values: [4] },
    }),
  );
  return path;
}

describe("overlapping generate() calls", { skip }, () => {
  let pipe: TextToVideoSDPipeline;
  before(async () => {
    pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    pipe.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.config);
  });
  after(() => pipe?.dispose());

  it("4 overlapping calls on one pipeline (DPM-Solver++) each equal the same call alone, to 1e-6", async () => {
    assert.equal(pipe.scheduler.config.algorithm_type, "dpmsolver++");
    const alone: Float32Array[] = [];
    for (const options of CALLS) alone.push(await floats(pipe, options));
    // The steps of the four calls, in the order they happened: they must interleave.
    const order: number[] = [];
    const together = await Promise.all(CALLS.map((options, i) => floats(pipe, { ...options, onStep: () => order.push(i) })));
    together.forEach((got, i) => assertClose(got, alone[i], `call ${i}`));
    const firstDone = order.lastIndexOf(2); // call 2 has the fewest steps
    assert.ok(new Set(order.slice(0, firstDone + 1)).size > 1, `the calls ran one after another (${order.join(",")}), not overlapping`);
    // Not vacuous: the calls give different results.
    assert.ok(maxDiff(alone[0], alone[2].subarray(0, alone[0].length)) > 1e-3);
  });

  it("2 pipelines loaded from one folder: overlapping calls equal the calls alone, and their weights are their own", async () => {
    const a = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    const b = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    try {
      b.scheduler = DPMSolverMultistepScheduler.fromConfig(b.scheduler.config);
      const wantA = await floats(a, CALLS[0]);
      const wantB = await floats(b, CALLS[2]);
      const [gotA, gotB] = await Promise.all([floats(a, CALLS[0]), floats(b, CALLS[2])]);
      assertClose(gotA, wantA, "pipeline a");
      assertClose(gotB, wantB, "pipeline b");
      // A LoRA and chunking on b leave a alone (they shared modules before issue 10).
      await b.loadLoraWeights(writeLora());
      await b.unet.enableForwardChunking({ chunkSize: 1, dim: 1 });
      assert.equal(a.unet.forwardChunking, null);
      assert.deepEqual(a.loras, []);
      assertClose(await floats(a, CALLS[0]), wantA, "pipeline a after a LoRA on b", 0);
      assert.ok(maxDiff(await floats(b, CALLS[2]), wantB) > 1e-3, "the LoRA changed b's output");
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});

describe("changes while a call runs reach only later calls", { skip }, () => {
  it("a scheduler swap, forward chunking and a LoRA made at step 1 leave the running call as it was", async () => {
    const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
    try {
      const lora = writeLora();
      const first = { ...CALLS[1], outputType: "latent" } as const;
      const second = CALLS[0];
      const before = await floats(pipe, first);

      let changes: Promise<unknown>[] = [];
      let settledEarly = false;
      let later: Promise<Float32Array> | undefined;
      const during = floats(pipe, {
        ...first,
        onStep: ({ step }) => {
          if (step === 1) {
            pipe.scheduler = EulerDiscreteScheduler.fromConfig(pipe.scheduler.config);
            changes = [pipe.unet.enableForwardChunking({ chunkSize: 1, dim: 0 }), pipe.loadLoraWeights(lora, { scale: 1.5 })];
            for (const c of changes) void c.then(() => (settledEarly = true));
            // Started after the changes: must see all of them.
            later = floats(pipe, second);
          } else if (settledEarly) {
            throw new Error(`a weight change finished during step ${step} of a running call`);
          }
        },
      });
      assertClose(await during, before, "the running call", 0);
      await Promise.all(changes);
      assert.deepEqual(pipe.loras.map((l) => l.fused), [true]);
      assert.deepEqual(pipe.unet.forwardChunking, { chunkSize: 1, dim: 0 });
      assert.equal(pipe.scheduler.className, "EulerDiscreteScheduler");
      // What the later call must equal: the same call alone, now that every change is in place.
      const expected = await floats(pipe, second);
      assertClose(await later!, expected, "the call started after the changes", 0);
      // Not vacuous: without the LoRA the later call gives another video.
      await pipe.unloadLoraWeights();
      assert.ok(maxDiff(await floats(pipe, second), expected) > 1e-3, "the LoRA changed the output");
    } finally {
      await pipe.dispose();
    }
  });
});
