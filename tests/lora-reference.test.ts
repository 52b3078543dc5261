// LoRA against diffusers' own fuse (tests/fixtures/reference/lora, diffusers 0.27.2 + PEFT 0.9.0):
// a PEFT-format and a kohya-format LoRA, each loaded and fused by the real diffusers. We check
// every fused parameter (1e-6), the fused UNet on a golden input (1e-5), a full pipeline run with
// the LoRA fused (prompt embeds 1e-5, frames 1e-4), and that unfusing gives back the checkpoint's
// weights bit for bit.
//
// diffusers 0.27.2's kohya conversion was written for UNet2D names: it turns `temp_attentions`
// into `temp.attentions` and `transformer_in` into `transformer.in`, finds no such modules and
// drops those entries with a warning (index.json `targets_dropped_by_diffusers`). torchvid applies
// them, which is what the file means; those modules are checked against W + s * alpha/r * up @ down
// (float64), and the diffusers goldens are compared with a copy of the file without them.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { TextToVideoSDPipeline, Tensor } from "../lib/index.ts";
import { readSafetensors, toFloat32, type SafetensorsFile } from "../lib/safetensors.ts";
import { assertClose, maxAbsDiff } from "./helpers/assert-close.ts";
import { parsePythonJson } from "./helpers/python-json.ts";
import { ReferenceTensors } from "./helpers/reference-data.ts";
import { referenceDir, referenceModel } from "./helpers/reference-model.ts";
import { makeBuffer } from "./helpers/safetensors-writer.ts";

interface LoraCase {
  name: string;
  format: "peft" | "kohya";
  file: string;
  rank: number;
  targets: { unet: string[]; text_encoder: string[] };
  targets_dropped_by_diffusers: string[];
  lora_scale: number;
  alphas?: { default: number; by_module_regex: [string, number][] };
  base_case: { name: string };
  unet_golden_fused: { file: string; call: string };
  pipeline_fused: { file: string; call: Record<string, unknown>; generator: string };
  effect_vs_base_case: { max_abs_change_frames: number };
}

const LORA_DIR = join(referenceDir, "lora");
const index = JSON.parse(readFileSync(join(LORA_DIR, "index.json"), "utf8")) as { cases: LoraCase[] };
const pipelineCases = (parsePythonJson(readFileSync(join(referenceDir, "pipelines", "cases.json"), "utf8")) as { cases: { name: string; file: string }[] }).cases;
const tmp = mkdtempSync(join(tmpdir(), "torchvid-lora-ref-"));

/** The kohya key prefix of a module (every "." becomes "_"). */
function kohyaKey(owner: "unet" | "text_encoder", module: string): string {
  return `${owner === "unet" ? "lora_unet" : "lora_te"}_${module.replace(/\./g, "_")}`;
}

/** A copy of a safetensors LoRA without the entries of `modules` (for comparing with diffusers, which dropped them). */
function withoutModules(file: SafetensorsFile, c: LoraCase, modules: string[]): string {
  const drop = modules.map((m) => kohyaKey("unet", m) + ".");
  const specs: Record<string, { shape: number[]; values: number[] }> = {};
  for (const [name, entry] of file.tensors) {
    if (drop.some((p) => name.startsWith(p))) continue;
    specs[name] = { shape: entry.shape, values: Array.from(toFloat32(entry)) };
  }
  assert.equal(Object.keys(specs).length, file.tensors.size - 3 * modules.length, "every dropped module had down, up and alpha");
  const path = join(tmp, `${c.name}__as_diffusers_loaded.safetensors`);
  writeFileSync(path, makeBuffer(specs));
  return path;
}

/** W + scale * alpha/r * up @ down in float64, for a linear module of the LoRA file. */
function expectedFused(w: Float32Array, file: SafetensorsFile, key: string, scale: number): Float64Array {
  const up = file.tensors.get(`${key}.lora_up.weight`)!;
  const down = file.tensors.get(`${key}.lora_down.weight`)!;
  const alpha = toFloat32(file.tensors.get(`${key}.alpha`)!)[0];
  const [rows, r] = up.shape;
  const cols = down.shape[1];
  const U = toFloat32(up);
  const D = toFloat32(down);
  const out = new Float64Array(w.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += U[i * r + k] * D[k * cols + j];
      out[i * cols + j] = w[i * cols + j] + scale * (alpha / r) * acc;
    }
  }
  return out;
}

let pipe: TextToVideoSDPipeline;
before(async () => {
  // A pipeline of its own: LoRA edits the loaded weights in place.
  pipe = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu", dtype: "float32" });
});

function param(name: string): Float32Array {
  const [owner, ...rest] = name.split(".");
  const module = owner === "unet" ? pipe.unet.module : pipe.textEncoder.module;
  return module.parameter(rest.join(".")).dataSync() as Float32Array;
}

/** Every parameter of both models, by `<owner>.<name>`. */
function snapshot(): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [owner, module] of [["unet", pipe.unet.module], ["text_encoder", pipe.textEncoder.module]] as const) {
    for (const p of module.namedParameters()) out.set(`${owner}.${p.name}`, module.parameter(p.name).dataSync() as Float32Array);
  }
  return out;
}

async function goldenUnet(c: LoraCase): Promise<{ out: Float32Array; expected: Float32Array }> {
  const input = /unet\/([^/]+)\//.exec(c.unet_golden_fused.call)![1];
  const golden = await ReferenceTensors.open(join("models", "golden.safetensors"));
  const sample = Tensor.from(golden.floats(`unet/${input}/sample`), golden.shape(`unet/${input}/sample`));
  const ehs = Tensor.from(golden.floats(`unet/${input}/encoder_hidden_states`), golden.shape(`unet/${input}/encoder_hidden_states`));
  const t = golden.ints(`unet/${input}/timestep`);
  const out = await pipe.unet.forward(sample, t[0], ehs);
  const data = out.dataSync() as Float32Array;
  for (const x of [sample, ehs, out]) x.dispose();
  const fused = await ReferenceTensors.open(join("lora", c.unet_golden_fused.file));
  return { out: data, expected: fused.floats("out") };
}

async function fusedRun(c: LoraCase): Promise<{ frames: Float32Array; embeds: Float32Array }> {
  const call = c.pipeline_fused.call as { prompt: string; num_frames: number; height: number; width: number; num_inference_steps: number; guidance_scale: number };
  const seed = Number(/manual_seed\((\d+)\)/.exec(c.pipeline_fused.generator)![1]);
  const embeds = await pipe.encodePrompt({ prompt: call.prompt, doClassifierFreeGuidance: call.guidance_scale > 1 });
  const embedData = embeds.dataSync() as Float32Array;
  embeds.dispose();
  const result = await pipe.generate({
    prompt: call.prompt,
    numFrames: call.num_frames,
    height: call.height,
    width: call.width,
    numInferenceSteps: call.num_inference_steps,
    guidanceScale: call.guidance_scale,
    seed,
    outputType: "float",
  });
  return { frames: result.frames[0].data as Float32Array, embeds: embedData };
}

describe("LoRA against diffusers 0.27.2 + PEFT (fuse, fused UNet, fused pipeline, unfuse)", () => {
  for (const c of index.cases) {
    it(`${c.name} (${c.format})`, async () => {
      const file = await readSafetensors(join(LORA_DIR, c.file));
      const dropped = c.targets_dropped_by_diffusers;
      const original = snapshot();
      const fusedRef = await ReferenceTensors.open(join("lora", `${c.name}__fused_weights.safetensors`));
      const diffusersFused = [...(await readSafetensors(fusedRef.path)).tensors.keys()];

      // 1. The file exactly as diffusers applied it: every fused parameter within 1e-6 of diffusers'.
      const asLoaded = dropped.length > 0 ? withoutModules(file, c, dropped) : join(LORA_DIR, c.file);
      await pipe.loadLoraWeights(asLoaded, { scale: c.lora_scale });
      const fused = snapshot();
      const changed = [...fused.keys()].filter((k) => maxAbsDiff(fused.get(k)!, original.get(k)!) > 0);
      assert.deepEqual(changed.sort(), [...diffusersFused].sort(), "the parameters the LoRA changes are the ones diffusers changed");
      for (const name of diffusersFused) assertClose(fused.get(name)!, fusedRef.floats(name), 1e-6, `fused ${name}`);

      // 2. The fused UNet on a golden input, and a full pipeline run with the LoRA fused.
      const { out, expected } = await goldenUnet(c);
      assertClose(out, expected, 1e-5, "fused UNet on the golden input");
      const run = await fusedRun(c);
      const ref = await ReferenceTensors.open(join("lora", c.pipeline_fused.file));
      const cond = ref.floats("prompt_embeds");
      if (ref.has("negative_prompt_embeds")) {
        const uncond = ref.floats("negative_prompt_embeds");
        assertClose(run.embeds.subarray(0, uncond.length), uncond, 1e-5, "negative prompt embeds");
        assertClose(run.embeds.subarray(uncond.length), cond, 1e-5, "prompt embeds");
      } else assertClose(run.embeds, cond, 1e-5, "prompt embeds");
      assertClose(run.frames, ref.floats("output"), 1e-4, "frames with the LoRA fused");
      // The LoRA really acts: the frames moved away from the base case by far more than the tolerance.
      const base = await ReferenceTensors.open(join("pipelines", pipelineCases.find((p) => p.name === c.base_case.name)!.file));
      const effect = maxAbsDiff(run.frames, base.floats("output"));
      assert.ok(effect > 10 * 1e-4 && Math.abs(effect - c.effect_vs_base_case.max_abs_change_frames) < 1e-4, `effect of the LoRA ${effect}`);

      // 3. Unfuse: the checkpoint's weights again, bit for bit.
      await pipe.unloadLoraWeights();
      for (const [name, w] of original) assert.deepEqual(param(name), w, `${name} restored bit for bit`);

      // 4. The whole file, as torchvid reads it: the modules diffusers dropped are applied too, as
      //    W + s * alpha/r * up @ down; everything else is still diffusers' fuse.
      if (dropped.length > 0) {
        await pipe.loadLoraWeights(join(LORA_DIR, c.file), { scale: c.lora_scale });
        for (const module of dropped) {
          const name = `unet.${module}.weight`;
          const want = expectedFused(original.get(name)!, file, kohyaKey("unet", module), c.lora_scale);
          assertClose(param(name), want, 1e-6, `${name} (dropped by diffusers, applied by torchvid)`);
          assert.ok(maxAbsDiff(param(name), original.get(name)!) > 1e-4, `${name} changed`);
        }
        for (const name of diffusersFused) assertClose(param(name), fusedRef.floats(name), 1e-6, `fused ${name} (whole file)`);
        await pipe.unloadLoraWeights();
        for (const [name, w] of original) assert.deepEqual(param(name), w, `${name} restored bit for bit`);
      }
    });
  }
});
