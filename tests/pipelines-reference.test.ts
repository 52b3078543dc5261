// End to end against the real diffusers runs in tests/fixtures/reference/pipelines: every case of
// cases.json, with its intermediate stages (token ids, prompt embeds, initial latents, timesteps,
// latents after every step) and the final frames within 1e-4 (float32, CPU).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { SCHEDULER_CLASSES, TextToVideoSDPipeline, VideoToVideoSDPipeline, Tensor, type StepEvent } from "../lib/index.ts";
import { assertAllClose, maxAbsDiff } from "./helpers/assert-close.ts";
import { parsePythonJson } from "./helpers/python-json.ts";
import { ReferenceTensors } from "./helpers/reference-data.ts";
import { referenceDir, referenceModel } from "./helpers/reference-model.ts";

interface Case {
  name: string;
  pipeline: "TextToVideoSDPipeline" | "VideoToVideoSDPipeline";
  scheduler: { class: string; from_config_overrides: Record<string, unknown>; how: string };
  call: Record<string, unknown>;
  generator: string;
  timesteps_run: number[];
  file: string;
}

const cases: Case[] = (parsePythonJson(readFileSync(join(referenceDir, "pipelines", "cases.json"), "utf8")) as { cases: Case[] }).cases;
const TOLERANCE = 1e-4;

function seedOf(c: Case): number {
  return Number(/manual_seed\((\d+)\)/.exec(c.generator)![1]);
}

/** diffusers' snake_case call -> our camelCase options. */
function optionsOf(c: Case): Record<string, unknown> {
  const map: Record<string, string> = {
    prompt: "prompt", negative_prompt: "negativePrompt", num_frames: "numFrames", height: "height", width: "width",
    num_inference_steps: "numInferenceSteps", guidance_scale: "guidanceScale", eta: "eta", strength: "strength",
  };
  const out: Record<string, unknown> = { seed: seedOf(c), outputType: c.call.output_type === "latent" ? "latent" : "float" };
  for (const [k, v] of Object.entries(c.call)) if (map[k]) out[map[k]] = v;
  return out;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = TOLERANCE): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max abs difference ${d} > ${tol}`);
}

let t2v: TextToVideoSDPipeline;

before(async () => {
  t2v = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu", dtype: "float32" });
});

describe("reference pipeline cases (diffusers 0.27.2, CPU float32)", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const ref = await ReferenceTensors.open(join("pipelines", c.file));
      const pipe = c.pipeline === "TextToVideoSDPipeline" ? TextToVideoSDPipeline.fromPipe(t2v) : VideoToVideoSDPipeline.fromPipe(t2v);
      const cls = SCHEDULER_CLASSES[c.scheduler.class as keyof typeof SCHEDULER_CLASSES];
      assert.ok(cls, `scheduler class ${c.scheduler.class} exists`);
      pipe.scheduler = cls.fromConfig(t2v.scheduler.config, c.scheduler.from_config_overrides);

      // Token ids: the tokenizer gives exactly the ids diffusers fed the text encoder.
      const prompts = ([] as string[]).concat(c.call.prompt as string | string[]);
      const ids = ref.ints("prompt_input_ids");
      assert.deepEqual(prompts.flatMap((p) => pipe.tokenizer.encode(p).inputIds), ids, "prompt token ids");

      // Prompt embeddings ([uncond, cond] with guidance).
      const cfg = (c.call.guidance_scale as number) > 1;
      const embeds = await pipe.encodePrompt({ prompt: c.call.prompt as string, negativePrompt: c.call.negative_prompt as string | undefined, doClassifierFreeGuidance: cfg });
      const embedData = embeds.dataSync() as Float32Array;
      const cond = ref.floats("prompt_embeds");
      if (cfg) {
        const uncond = ref.floats("negative_prompt_embeds");
        close(embedData.subarray(0, uncond.length), uncond, "negative prompt embeds");
        close(embedData.subarray(uncond.length), cond, "prompt embeds");
      } else {
        close(embedData, cond, "prompt embeds");
      }

      // Run, checking every step's latents on the way.
      const steps: Float32Array[] = [];
      const timesteps: number[] = [];
      const options = optionsOf(c);
      if (c.pipeline === "VideoToVideoSDPipeline") {
        const [f, h, w] = ref.shape("input_video_uint8");
        options.video = { numFrames: f, height: h, width: w, data: Uint8Array.from(ref.ints("input_video_uint8")) };
      }
      options.onStep = (e: StepEvent) => {
        steps.push(e.latents.dataSync() as Float32Array);
        timesteps.push(e.timestep);
      };
      const result = (await (pipe as TextToVideoSDPipeline).generate(options as never)) as unknown as Record<string, unknown>;
      assert.deepEqual(timesteps, c.timesteps_run, "timesteps run");
      const after = ref.floats("latents_after_step");
      const per = after.length / timesteps.length;
      // Latents of the tiny random UNet grow to ~70 and DPM-Solver divides by alpha_t ~ 0.07 at
      // t=999, so float32 rounding is relative here: 1e-4 absolute + 1e-5 relative.
      steps.forEach((s, i) => assertAllClose(s, after.subarray(i * per, (i + 1) * per), 1e-5, TOLERANCE, `latents after step ${i + 1}`));

      const expected = ref.floats("output");
      if (options.outputType === "latent") {
        const { latents } = result as { latents: { shape: number[]; data: Float32Array } };
        assert.deepEqual(latents.shape, ref.shape("output"));
        close(latents.data, expected, "final latents");
      } else {
        const frames = result.frames as { numFrames: number; height: number; width: number; data: Float32Array }[];
        const [b, f, h, w] = ref.shape("output");
        assert.equal(frames.length, b);
        const all = new Float32Array(expected.length);
        frames.forEach((v, i) => {
          assert.deepEqual([v.numFrames, v.height, v.width], [f, h, w]);
          all.set(v.data, i * v.data.length);
        });
        close(all, expected, "frames");
      }
    });
  }
});

describe("intermediate stages recorded by the reference", () => {
  it("initial latents of text-to-video = randn(seed) * init_noise_sigma, for batch 2 too", async () => {
    for (const name of ["t2v_ddim_cfg", "t2v_ddim_eta1_batch2"]) {
      const c = cases.find((x) => x.name === name)!;
      const ref = await ReferenceTensors.open(join("pipelines", c.file));
      const pipe = TextToVideoSDPipeline.fromPipe(t2v);
      pipe.scheduler.setTimesteps(c.call.num_inference_steps as number);
      const { Generator } = await import("../lib/index.ts");
      const latents = await pipe.prepareLatents(ref.shape("initial_latents"), new Generator(seedOf(c)));
      close(latents.dataSync() as Float32Array, ref.floats("initial_latents"), `${name} initial latents`, 0);
    }
  });

  it("a list of generators draws one row per video, like diffusers' randn_tensor", async () => {
    const { Generator } = await import("../lib/index.ts");
    const pipe = TextToVideoSDPipeline.fromPipe(t2v);
    pipe.scheduler.setTimesteps(2);
    const both = await pipe.prepareLatents([2, 4, 2, 8, 8], [new Generator(1), new Generator(2)]);
    const one = await pipe.prepareLatents([1, 4, 2, 8, 8], new Generator(2));
    const data = both.dataSync() as Float32Array;
    assert.deepEqual(Array.from(data.subarray(data.length / 2)), Array.from(one.dataSync() as Float32Array));
  });

  it("video-to-video initial latents (posterior sample, then add_noise) match", async () => {
    const c = cases.find((x) => x.name === "v2v_ddim_strength0.6")!;
    const ref = await ReferenceTensors.open(join("pipelines", c.file));
    const pipe = VideoToVideoSDPipeline.fromPipe(t2v);
    const { Generator } = await import("../lib/index.ts");
    pipe.scheduler.setTimesteps(5);
    const chosen = pipe.scheduler.getTimestepsForStrength(5, 0.6);
    const [f, h, w] = ref.shape("input_video_uint8");
    const video = { numFrames: f, height: h, width: w, data: Uint8Array.from(ref.ints("input_video_uint8")) };
    const latents = await pipe.prepareLatents(video, chosen.latentTimestep, new Generator(seedOf(c)));
    close(latents.dataSync() as Float32Array, ref.floats("initial_latents"), "v2v initial latents", 1e-5);
  });
});

export { Tensor };
