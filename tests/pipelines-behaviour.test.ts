// Pipeline behaviour beyond the reference runs: memory options never change the output, bad
// input is refused before any model runs, aborts, seeds, output types, sharing, video inputs.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
  AbortError,
  DDIMScheduler,
  EulerAncestralDiscreteScheduler,
  Generator,
  TextToVideoSDPipeline,
  Tensor,
  VideoToVideoSDPipeline,
  type Video,
} from "../lib/index.ts";
import { referenceModel } from "./helpers/reference-model.ts";

let pipe: TextToVideoSDPipeline;
const small = { prompt: "a cat", numFrames: 3, height: 16, width: 16, numInferenceSteps: 2, seed: 5 } as const;

before(async () => {
  pipe = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu" });
});

async function frames(p: TextToVideoSDPipeline, extra: object = {}): Promise<Uint8Array> {
  const { frames } = await p.generate({ ...small, ...extra });
  return frames[0].data as Uint8Array;
}

describe("memory options change memory, never the output", () => {
  it("CPU offload gives bit-identical frames; forward chunking (dims 0 and 1, sizes 1 and 2) identical uint8 frames, float within 1e-5", async () => {
    const base = await frames(pipe);
    const baseFloat = (await frames(pipe, { outputType: "float" })) as unknown as Float32Array;
    const p = TextToVideoSDPipeline.fromPipe(pipe);
    p.enableModelCpuOffload();
    assert.deepEqual(await frames(p, { outputType: "float" }), baseFloat, "offload changed the output");
    for (const chunkSize of [1, 2]) {
      for (const dim of [0, 1] as const) {
        await p.unet.enableForwardChunking({ chunkSize, dim });
        assert.deepEqual(p.unet.forwardChunking, { chunkSize, dim });
        assert.deepEqual(await frames(p), base, `chunking ${chunkSize}/${dim} changed the uint8 frames`);
        // A chunk is a matrix product with fewer rows; oneDNN's sgemm may sum in another order for it.
        const chunked = (await frames(p, { outputType: "float" })) as unknown as Float32Array;
        let worst = 0;
        for (let i = 0; i < chunked.length; i++) worst = Math.max(worst, Math.abs(chunked[i] - baseFloat[i]));
        assert.ok(worst <= 1e-5, `chunking ${chunkSize}/${dim} changed float frames by ${worst}`);
      }
    }
    await p.unet.disableForwardChunking();
    assert.equal(p.unet.forwardChunking, null);
    assert.deepEqual(await frames(p, { outputType: "float" }), baseFloat, "unchunked again, the output differs");
  });

  it("VAE slicing gives identical uint8 frames (float frames within 1e-6: batched convs round differently)", async () => {
    const base = await frames(pipe);
    const baseFloat = (await frames(pipe, { outputType: "float" })) as unknown as Float32Array;
    const p = TextToVideoSDPipeline.fromPipe(pipe);
    p.enableVaeSlicing();
    try {
      assert.deepEqual(await frames(p), base);
      const sliced = (await frames(p, { outputType: "float" })) as unknown as Float32Array;
      let worst = 0;
      for (let i = 0; i < sliced.length; i++) worst = Math.max(worst, Math.abs(sliced[i] - baseFloat[i]));
      assert.ok(worst <= 1e-6, `VAE slicing changed float frames by ${worst}`);
    } finally {
      p.disableVaeSlicing();
    }
  });

  it("sequential offload is refused with a pointer to what works", () => {
    assert.throws(() => pipe.enableSequentialCpuOffload(), /enableModelCpuOffload\(\), enableVaeSlicing\(\)/);
  });
});

describe("seeds and generators", () => {
  it("the same seed gives the same video; another seed does not", async () => {
    assert.deepEqual(await frames(pipe), await frames(pipe));
    assert.notDeepEqual(await frames(pipe), await frames(pipe, { seed: 6 }));
  });
  it("a Generator continues its stream (two calls differ, a reseeded one repeats)", async () => {
    const g = new Generator(9);
    const a = await frames(pipe, { seed: undefined, generator: g });
    const b = await frames(pipe, { seed: undefined, generator: g });
    assert.notDeepEqual(a, b);
    assert.deepEqual(await frames(pipe, { seed: undefined, generator: new Generator(9) }), a);
  });
  it("ancestral (stochastic) schedulers are reproducible for a fixed seed", async () => {
    const p = TextToVideoSDPipeline.fromPipe(pipe);
    p.scheduler = EulerAncestralDiscreteScheduler.fromConfig(pipe.scheduler.config);
    assert.deepEqual(await frames(p), await frames(p));
    p.scheduler = DDIMScheduler.fromConfig(pipe.scheduler.config);
    assert.deepEqual(await frames(p, { eta: 1 }), await frames(p, { eta: 1 }));
    assert.notDeepEqual(await frames(p, { eta: 1 }), await frames(p, { eta: 0 }));
  });
});

describe("outputs", () => {
  it("uint8 frames are round(255 * float frames)", async () => {
    const f = (await pipe.generate({ ...small, outputType: "float" })).frames[0];
    const u = (await pipe.generate({ ...small })).frames[0];
    assert.ok(u.data instanceof Uint8Array && f.data instanceof Float32Array);
    assert.deepEqual([u.numFrames, u.height, u.width], [3, 16, 16]);
    for (let i = 0; i < u.data.length; i++) assert.equal(u.data[i], Math.round(f.data[i] * 255));
  });
  it("numVideosPerPrompt and prompt arrays give one video each; row 0 of a batch is not row 1", async () => {
    const { frames: vs } = await pipe.generate({ ...small, prompt: ["a cat", "a dog"], numVideosPerPrompt: 2 });
    assert.equal(vs.length, 4);
    assert.notDeepEqual(vs[0].data, vs[1].data);
  });
  it("latents given by the caller are left as they were (the loop updates its own copy in place)", async () => {
    const given = Tensor.randn([1, 4, 3, 8, 8], { generator: new Generator(11) });
    const before = given.dataSync() as Float32Array;
    const first = await frames(pipe, { seed: undefined, latents: given });
    assert.deepEqual(given.dataSync(), before);
    assert.deepEqual(await frames(pipe, { seed: undefined, latents: given }), first);
    given.dispose();
  });
  it("latent output has [B, 4, F, h, w]", async () => {
    const out = await pipe.generate({ ...small, outputType: "latent" });
    assert.deepEqual(out.latents.shape, [1, 4, 3, 8, 8]);
    assert.equal(out.latents.data.length, 4 * 3 * 64);
  });
  it("clipSkip changes the conditioning", async () => {
    assert.notDeepEqual(await frames(pipe, { clipSkip: 1 }), await frames(pipe));
  });
  it("promptEmbeds given directly equal encoding the prompt", async () => {
    const embeds = await pipe.encodePrompt({ prompt: "a cat", doClassifierFreeGuidance: false });
    const negative = await pipe.encodePrompt({ prompt: "", doClassifierFreeGuidance: false });
    const { prompt: _p, ...rest } = small;
    const { frames: vs } = await pipe.generate({ ...rest, promptEmbeds: embeds, negativePromptEmbeds: negative });
    assert.deepEqual(vs[0].data, await frames(pipe));
  });
  it("onStep reports every step in order with its timestep", async () => {
    const seen: number[] = [];
    await pipe.generate({ ...small, numInferenceSteps: 3, onStep: (e) => seen.push(e.step * 10000 + e.timestep) });
    assert.deepEqual(seen, [10000 + 667, 20000 + 334, 30000 + 1]);
  });
});

describe("bad input is refused before any model runs", () => {
  const cases: [string, object, RegExp, ErrorConstructor][] = [
    ["empty prompt list", { prompt: [] }, /at least one prompt/, RangeError],
    ["no prompt", { prompt: undefined }, /Pass a prompt/, TypeError],
    ["prompt not a string", { prompt: 42 }, /Expected a string or an array of strings for prompt/, TypeError],
    ["height not divisible by 8", { height: 20 }, /height must be divisible by 8 but received 20: try 16 or 24/, RangeError],
    ["width not an integer", { width: 16.5 }, /Expected an integer for width/, RangeError],
    ["numFrames 0", { numFrames: 0 }, /Expected an integer >= 1 for numFrames but received 0/, RangeError],
    ["steps 0", { numInferenceSteps: 0 }, /numInferenceSteps/, RangeError],
    ["unknown option", { guidance_scale: 3 }, /Unknown option "guidance_scale" for generate\(\): did you mean "guidanceScale"\?/, TypeError],
    ["bad outputType", { outputType: "np" }, /one of "uint8", "float", "latent" for outputType/, RangeError],
    ["seed and generator", { generator: new Generator(1) }, /either seed or generator/, TypeError],
    ["latents of the wrong shape", { latents: Tensor.zeros([1, 4, 2, 8, 8]) }, /latents must have shape \[1,4,3,8,8\]/, RangeError],
    ["negative prompt count", { prompt: ["a", "b"], negativePrompt: ["x", "y", "z"] }, /negativePrompt has 3 entries but prompt has 2/, RangeError],
  ];
  for (const [name, extra, message, type] of cases) {
    it(name, async () => {
      let unetCalls = 0;
      const p = TextToVideoSDPipeline.fromPipe(pipe);
      const forward = p.unet.forward.bind(p.unet);
      p.unet.forward = async (...args) => {
        unetCalls++;
        return forward(...args);
      };
      await assert.rejects(p.generate({ ...small, ...extra } as never), (e: Error) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
        assert.match(e.message, message);
        return true;
      });
      assert.equal(unetCalls, 0);
    });
  }
  it("float16 on the CPU is refused with the fix", async () => {
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu", dtype: "float16" }), /float16" cannot run on the CPU.*bfloat16/);
  });
  it("a missing model folder names the fix", async () => {
    await assert.rejects(TextToVideoSDPipeline.fromPretrained("/nonexistent/model"), /Model folder \/nonexistent\/model not found: run `torchvid convert/);
  });
});

describe("abort", () => {
  it("an AbortSignal stops between steps with an AbortError", async () => {
    const controller = new AbortController();
    let steps = 0;
    await assert.rejects(
      pipe.generate({
        ...small,
        numInferenceSteps: 5,
        signal: controller.signal,
        onStep: () => {
          if (++steps === 2) controller.abort();
        },
      }),
      (e: Error) => e instanceof AbortError && (e as AbortError).code === "ERR_TORCHVID_ABORTED",
    );
    assert.equal(steps, 2);
    // The pipeline still works afterwards.
    assert.equal((await frames(pipe)).length, 3 * 16 * 16 * 3);
  });
});

describe("loading and sharing", () => {
  it("loading the same folder twice gives independent weights; fromPipe shares them", async () => {
    const again = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu" });
    try {
      assert.notEqual(again.unet.module, pipe.unet.module);
      assert.notEqual(again.vae.encoder, pipe.vae.encoder);
      assert.equal(TextToVideoSDPipeline.fromPipe(pipe).unet.module, pipe.unet.module);
    } finally {
      await again.dispose();
    }
  });
  it("bfloat16 on the CPU runs and stays close to float32", async () => {
    const bf = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu", dtype: "bfloat16" });
    assert.equal(bf.unet.module.dtype, "bfloat16");
    const a = (await bf.generate({ ...small, outputType: "float" })).frames[0].data as Float32Array;
    const b = (await pipe.generate({ ...small, outputType: "float" })).frames[0].data as Float32Array;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 0.1, `bfloat16 frames differ from float32 by ${worst}`);
  });
});

describe("video-to-video inputs", () => {
  const video = (): Video => {
    const data = new Uint8Array(2 * 16 * 16 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
    return { numFrames: 2, height: 16, width: 16, data };
  };
  const run = (p: VideoToVideoSDPipeline, input: unknown, extra: object = {}) =>
    p.generate({ prompt: "a cat", video: input as Video, strength: 0.5, numInferenceSteps: 4, seed: 3, ...extra });

  it("a Video and the same frames as an image array give the same result", async () => {
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    const v = video();
    const images = [0, 1].map((i) => ({ width: 16, height: 16, data: v.data.slice(i * 768, (i + 1) * 768) }));
    const a = await run(v2v, v);
    const b = await run(v2v, images);
    assert.deepEqual(a.frames[0].data, b.frames[0].data);
    assert.equal(a.frames[0].numFrames, 2);
  });
  it("takes a path (a folder of PNG frames, decoded with readVideo)", async () => {
    const { exportVideo } = await import("../lib/index.ts");
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const file = join(mkdtempSync(join(tmpdir(), "torchvid-v2v-")), "frames");
    await exportVideo(video(), `${file}/`);
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    const fromPath = await run(v2v, file);
    const fromFrames = await run(v2v, video());
    assert.deepEqual(fromPath.frames[0].data, fromFrames.frames[0].data);
  });

  it("resizes to the requested size", async () => {
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    const out = await run(v2v, video(), { width: 24, height: 16 });
    assert.deepEqual([out.frames[0].width, out.frames[0].height], [24, 16]);
  });
  it("strength outside (0, 1], mismatched frame sizes, a missing video: clear errors", async () => {
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    await assert.rejects(run(v2v, video(), { strength: 0 }), /strength in \(0, 1\] but received 0/);
    await assert.rejects(run(v2v, video(), { strength: 1.5 }), RangeError);
    const bad = [{ width: 16, height: 16, data: new Uint8Array(768) }, { width: 8, height: 8, data: new Uint8Array(192) }];
    await assert.rejects(run(v2v, bad), /video\[1\] is 8x8.*every frame must be 16x16/);
    await assert.rejects(v2v.generate({ prompt: "x" } as never), /needs a video/);
  });
});
