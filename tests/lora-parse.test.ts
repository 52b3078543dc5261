/**
 * LoRA parsing and key mapping (no native code): safetensors files are built in memory, and the
 * parameter names are those of the reference tiny UNet3D and CLIP text encoder, which keep
 * diffusers/transformers state_dict names exactly as our converter does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { analyzeLora, fuseLora, parseLora, readLora, type LoraParameterNames, type LoraPatch } from "../lib/lora/index.ts";
import { parseSafetensors, readSafetensors, type SafetensorsFile } from "../lib/safetensors.ts";
import { ModelFormatError, TorchvidError } from "../lib/errors.ts";
import type { Tensor } from "../lib/tensor.ts";

const MODELS = join(import.meta.dirname, "fixtures/reference/models/pipeline");
const unetFile = await readSafetensors(join(MODELS, "unet/diffusion_pytorch_model.safetensors"));
const textEncoderFile = await readSafetensors(join(MODELS, "text_encoder/model.safetensors"));
const NAMES: LoraParameterNames = { unet: [...unetFile.tensors.keys()], text_encoder: [...textEncoderFile.tensors.keys()] };

import { makeBuffer, makeFile, type TensorSpec } from "./helpers/safetensors-writer.ts";

const ATTN = "down_blocks.0.attentions.0.transformer_blocks.0.attn1";
const TE_ATTN = "text_model.encoder.layers.0.self_attn";

function byParameter(patches: LoraPatch[]): Map<string, LoraPatch> {
  return new Map(patches.map((p) => [`${p.component}:${p.parameter}`, p]));
}

// ---- formats ------------------------------------------------------------------------------

test("diffusers/PEFT: unet. and text_encoder. prefixes, lora_A/lora_B, no alpha = scale 1", () => {
  const file = makeFile({
    [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
    [`unet.${ATTN}.to_out.0.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_out.0.lora_B.weight`]: { shape: [16, 4] },
    [`text_encoder.${TE_ATTN}.q_proj.lora_A.weight`]: { shape: [2, 32] },
    [`text_encoder.${TE_ATTN}.q_proj.lora_B.weight`]: { shape: [32, 2] },
  });
  const { formats, patches, skipped } = analyzeLora(file, NAMES);
  assert.deepEqual(formats, ["peft"]);
  assert.deepEqual(skipped, []);
  const map = byParameter(patches);
  assert.equal(patches.length, 3);
  const q = map.get(`unet:${ATTN}.to_q.weight`)!;
  assert.equal(q.kind, "linear");
  assert.equal(q.scale, 1);
  assert.equal(q.rank, 4);
  assert.equal(q.alpha, undefined);
  assert.deepEqual(q.down.shape, [4, 16]);
  assert.deepEqual(q.up.shape, [16, 4]);
  assert.equal(q.down, file.tensors.get(`unet.${ATTN}.to_q.lora_A.weight`));
  assert.ok(map.has(`unet:${ATTN}.to_out.0.weight`));
  const te = map.get(`text_encoder:${TE_ATTN}.q_proj.weight`)!;
  assert.equal(te.rank, 2);
  assert.deepEqual(te.keys, { down: `text_encoder.${TE_ATTN}.q_proj.lora_A.weight`, up: `text_encoder.${TE_ATTN}.q_proj.lora_B.weight` });
});

test("PEFT: base_model.model. prefix, adapter names in keys, network alphas", () => {
  const file = makeFile({
    [`base_model.model.${ATTN}.to_k.lora_A.default.weight`]: { shape: [4, 16] },
    [`base_model.model.${ATTN}.to_k.lora_B.default.weight`]: { shape: [16, 4] },
    [`unet.${ATTN}.to_v.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_v.lora_B.weight`]: { shape: [16, 4] },
    [`unet.${ATTN}.to_v.alpha`]: { shape: [], values: [8] },
    [`base_model.model.${TE_ATTN}.v_proj.lora_A.weight`]: { shape: [4, 32] },
    [`base_model.model.${TE_ATTN}.v_proj.lora_B.weight`]: { shape: [32, 4] },
  });
  const map = byParameter(parseLora(file, NAMES));
  assert.equal(map.get(`unet:${ATTN}.to_k.weight`)!.scale, 1);
  const v = map.get(`unet:${ATTN}.to_v.weight`)!;
  assert.equal(v.alpha, 8);
  assert.equal(v.scale, 2);
  assert.equal(v.keys.alpha, `unet.${ATTN}.to_v.alpha`);
  // No component prefix: the text encoder is found because the UNet has no such module.
  assert.ok(map.has(`text_encoder:${TE_ATTN}.v_proj.weight`));
});

test("PEFT: lora_alpha / alpha_pattern / use_rslora from diffusers' lora_adapter_metadata", () => {
  const metadata = {
    format: "pt",
    lora_adapter_metadata: JSON.stringify({ "unet.r": 4, "unet.lora_alpha": 8, "unet.alpha_pattern": { "attn1.to_k": 2 }, "text_encoder.lora_alpha": 4, "text_encoder.use_rslora": true }),
  };
  const file = makeFile(
    {
      [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
      [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
      [`unet.${ATTN}.to_k.lora_A.weight`]: { shape: [4, 16] },
      [`unet.${ATTN}.to_k.lora_B.weight`]: { shape: [16, 4] },
      [`text_encoder.${TE_ATTN}.k_proj.lora_A.weight`]: { shape: [4, 32] },
      [`text_encoder.${TE_ATTN}.k_proj.lora_B.weight`]: { shape: [32, 4] },
    },
    metadata,
  );
  const map = byParameter(parseLora(file, NAMES));
  assert.equal(map.get(`unet:${ATTN}.to_q.weight`)!.scale, 2);
  assert.equal(map.get(`unet:${ATTN}.to_k.weight`)!.scale, 0.5);
  assert.equal(map.get(`text_encoder:${TE_ATTN}.k_proj.weight`)!.scale, 2); // 4 / sqrt(4)
  assert.throws(() => parseLora(makeFile({ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } }, { lora_adapter_metadata: "{" }), NAMES), ModelFormatError);
});

test("old diffusers attn-procs and lora.down/up layouts map to to_q / to_out.0 / out_proj", () => {
  const file = makeFile({
    [`${ATTN}.processor.to_q_lora.down.weight`]: { shape: [4, 16] },
    [`${ATTN}.processor.to_q_lora.up.weight`]: { shape: [16, 4] },
    [`${ATTN}.processor.to_out_lora.down.weight`]: { shape: [4, 16] },
    [`${ATTN}.processor.to_out_lora.up.weight`]: { shape: [16, 4] },
    [`unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v.lora.down.weight`]: { shape: [4, 32] },
    [`unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v.lora.up.weight`]: { shape: [32, 4] },
    [`unet.mid_block.attentions.0.proj_in.lora.down.weight`]: { shape: [4, 32] },
    [`unet.mid_block.attentions.0.proj_in.lora.up.weight`]: { shape: [32, 4] },
    [`text_encoder.${TE_ATTN}.to_out_lora.down.weight`]: { shape: [4, 32] },
    [`text_encoder.${TE_ATTN}.to_out_lora.up.weight`]: { shape: [32, 4] },
    [`text_encoder.${TE_ATTN}.q_proj.lora_linear_layer.down.weight`]: { shape: [4, 32] },
    [`text_encoder.${TE_ATTN}.q_proj.lora_linear_layer.up.weight`]: { shape: [32, 4] },
  });
  const { formats, patches } = analyzeLora(file, NAMES);
  assert.deepEqual(formats, ["diffusers-old"]);
  assert.deepEqual(patches.map((p) => `${p.component}:${p.parameter}`).sort(), [
    `text_encoder:${TE_ATTN}.out_proj.weight`,
    `text_encoder:${TE_ATTN}.q_proj.weight`,
    `unet:${ATTN}.to_out.0.weight`,
    `unet:${ATTN}.to_q.weight`,
    "unet:mid_block.attentions.0.proj_in.weight",
    "unet:mid_block.attentions.0.transformer_blocks.0.attn1.to_v.weight",
  ]);
  assert.ok(patches.every((p) => p.scale === 1 && p.format === "diffusers-old"));
});

test("kohya: underscored names resolved against real names, alpha/rank, conv and temporal layers", () => {
  const file = makeFile({
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": { shape: [4, 16] },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": { shape: [16, 4] },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha": { shape: [], values: [1] },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_down.weight": { shape: [8, 16] },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight": { shape: [16, 8] },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha": { shape: [], dtype: "F16", values: [4] },
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": { shape: [4, 16, 1, 1] },
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": { shape: [16, 4, 1, 1] },
    "lora_unet_down_blocks_0_temp_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_down.weight": { shape: [4, 16] },
    "lora_unet_down_blocks_0_temp_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_up.weight": { shape: [128, 4] },
    "lora_unet_down_blocks_0_temp_attentions_0_transformer_blocks_0_ff_net_0_proj.alpha": { shape: [], dtype: "I64", values: [2] },
    "lora_unet_transformer_in_transformer_blocks_0_attn1_to_k.lora_down.weight": { shape: [4, 32] },
    "lora_unet_transformer_in_transformer_blocks_0_attn1_to_k.lora_up.weight": { shape: [32, 4] },
    "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": { shape: [2, 16, 3, 3] },
    "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": { shape: [16, 2, 1, 1] },
    "lora_unet_down_blocks_0_temp_convs_0_conv1_2.lora_down.weight": { shape: [2, 16, 3, 1, 1] },
    "lora_unet_down_blocks_0_temp_convs_0_conv1_2.lora_up.weight": { shape: [16, 2, 1, 1, 1] },
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { shape: [4, 32] },
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { shape: [32, 4] },
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha": { shape: [], values: [2] },
    "lora_te1_text_model_encoder_layers_1_mlp_fc1.lora_down.weight": { shape: [4, 32] },
    "lora_te1_text_model_encoder_layers_1_mlp_fc1.lora_up.weight": { shape: [37, 4] },
  });
  const { formats, patches, skipped } = analyzeLora(file, NAMES);
  assert.deepEqual(formats, ["kohya"]);
  assert.deepEqual(skipped, []);
  const map = byParameter(patches);
  assert.equal(patches.length, 9);
  assert.equal(map.get(`unet:${ATTN}.to_q.weight`)!.scale, 0.25);
  const out = map.get(`unet:${ATTN}.to_out.0.weight`)!;
  assert.equal(out.alpha, 4);
  assert.equal(out.scale, 0.5);
  assert.equal(map.get("unet:down_blocks.0.attentions.0.proj_in.weight")!.kind, "conv");
  assert.equal(map.get("unet:down_blocks.0.temp_attentions.0.transformer_blocks.0.ff.net.0.proj.weight")!.scale, 0.5);
  assert.ok(map.has("unet:transformer_in.transformer_blocks.0.attn1.to_k.weight"));
  const conv = map.get("unet:down_blocks.0.resnets.0.conv1.weight")!;
  assert.equal(conv.kind, "conv");
  assert.equal(conv.rank, 2);
  assert.equal(map.get("unet:down_blocks.0.temp_convs.0.conv1.2.weight")!.kind, "conv");
  assert.equal(map.get(`text_encoder:${TE_ATTN}.q_proj.weight`)!.scale, 0.5);
  assert.ok(map.has("text_encoder:text_model.encoder.layers.1.mlp.fc1.weight"));
  assert.ok(patches.every((p) => p.format === "kohya"));
});

test("every weight of the real UNet3D and text encoder round-trips through kohya and PEFT names", () => {
  for (const [component, source] of [["unet", unetFile], ["text_encoder", textEncoderFile]] as const) {
    const weights = [...source.tensors].filter(([name, e]) => name.endsWith(".weight") && e.shape.length >= 2);
    const kohyaPrefix = component === "unet" ? "lora_unet_" : "lora_te_";
    const kohya: Record<string, TensorSpec> = {};
    const peft: Record<string, TensorSpec> = {};
    for (const [name, entry] of weights) {
      const module = name.slice(0, -".weight".length);
      const [out, ...rest] = entry.shape;
      const down = { shape: [1, ...rest], values: new Array(rest.reduce((a, b) => a * b, 1)).fill(1) };
      const up = { shape: [out, 1, ...rest.slice(1).map(() => 1)], values: new Array(out).fill(1) };
      kohya[`${kohyaPrefix}${module.replaceAll(".", "_")}.lora_down.weight`] = down;
      kohya[`${kohyaPrefix}${module.replaceAll(".", "_")}.lora_up.weight`] = up;
      peft[`${component}.${module}.lora_A.weight`] = down;
      peft[`${component}.${module}.lora_B.weight`] = up;
    }
    const expected = weights.map(([name]) => name).sort();
    for (const specs of [kohya, peft]) {
      const patches = parseLora(makeFile(specs), NAMES);
      assert.deepEqual(patches.map((p) => p.parameter).sort(), expected);
      assert.ok(patches.every((p) => p.component === component));
    }
  }
});

// ---- problems -----------------------------------------------------------------------------

test("a file in no known format is a ModelFormatError listing its first keys", () => {
  const file = makeFile({ "model.diffusion_model.input_blocks.1.weight": { shape: [2, 2] }, "something.else": { shape: [1] } });
  assert.throws(() => parseLora(file, NAMES), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.match(err.message, /no LoRA in a format torchvid reads/);
    assert.match(err.message, /model\.diffusion_model\.input_blocks\.1\.weight, something\.else/);
    return true;
  });
  assert.throws(() => parseLora(makeFile({}), NAMES), /holds no tensors/);
});

test("unknown target modules: strict error naming them, or skipped with strict: false", () => {
  const file = makeFile({
    [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
    "unet.down_blocks.3.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": { shape: [4, 16] },
    "unet.down_blocks.3.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": { shape: [16, 4] },
    "lora_unet_input_blocks_1_1_proj_in.lora_down.weight": { shape: [4, 16] },
    "lora_unet_input_blocks_1_1_proj_in.lora_up.weight": { shape: [16, 4] },
    "lora_unet_input_blocks_1_1_proj_in.alpha": { shape: [], values: [4] },
  });
  assert.throws(() => parseLora(file, NAMES), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.match(err.message, /unet has no parameter down_blocks\.3\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight/);
    assert.match(err.message, /kohya module input_blocks_1_1_proj_in matches no unet parameter/);
    assert.match(err.message, /another model/);
    assert.match(err.message, /strict: false/);
    return true;
  });
  const { patches, skipped } = analyzeLora(file, NAMES, { strict: false });
  assert.deepEqual(patches.map((p) => p.parameter), [`${ATTN}.to_q.weight`]);
  assert.equal(skipped.length, 2);
  assert.deepEqual(skipped[1].keys, ["lora_unet_input_blocks_1_1_proj_in.lora_down.weight", "lora_unet_input_blocks_1_1_proj_in.lora_up.weight", "lora_unet_input_blocks_1_1_proj_in.alpha"]);
  assert.deepEqual(parseLora(file, NAMES, { strict: false }), patches);
});

test("text encoder LoRA without text encoder names says so", () => {
  const file = makeFile({
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { shape: [4, 32] },
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { shape: [32, 4] },
  });
  assert.throws(() => parseLora(file, { unet: NAMES.unet }), /no parameter names were given for text_encoder/);
});

test("half a pair, a rank mismatch, a big up kernel, integer factors and LyCORIS are refused by name", () => {
  const cases: [Record<string, TensorSpec>, RegExp][] = [
    [{ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] } }, /to_q has a down factor .* but no up factor/],
    [{ [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } }, /has an up factor .* but no down factor/],
    [{ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 2] } }, /disagree on the rank/],
    [
      { "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": { shape: [2, 16, 3, 3] }, "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": { shape: [16, 2, 3, 3] } },
      /3x3 kernel/,
    ],
    [{ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16], dtype: "I64", values: new Array(64).fill(1) }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } }, /I64, not a float/],
    [{ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] }, [`unet.${ATTN}.to_q.alpha`]: { shape: [2] } }, /must be one finite number/],
    [
      {
        "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": { shape: [16, 4] },
        "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_b": { shape: [4, 16] },
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": { shape: [], values: [4] },
      },
      /LoHa \(LyCORIS\)/,
    ],
    [{ "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { shape: [4, 32] } }, /second text encoder/],
    [
      {
        [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
        [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": { shape: [4, 16] },
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": { shape: [16, 4] },
      },
      /which unet\.down_blocks.* already targets/,
    ],
  ];
  for (const [specs, message] of cases) {
    assert.throws(() => parseLora(makeFile(specs), NAMES), (err: unknown) => {
      assert.ok(err instanceof ModelFormatError, String(err));
      assert.match(err.message, message);
      return true;
    });
  }
  // LyCORIS alpha keys are reported with their module, not as a separate "alpha without factors".
  const loha = makeFile({
    [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
    "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": { shape: [16, 4] },
    "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": { shape: [], values: [4] },
  });
  const { patches, skipped } = analyzeLora(loha, NAMES, { strict: false });
  assert.equal(patches.length, 1);
  assert.equal(skipped.length, 1);
  assert.deepEqual(skipped[0].keys, ["lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a", "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"]);
});

test("readLora reads a .safetensors file, names it in errors and refuses pickles", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "torchvid-lora-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, "pytorch_lora_weights.safetensors");
  await writeFile(path, makeBuffer({ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } }));
  const { formats, patches } = await readLora(path, NAMES);
  assert.deepEqual(formats, ["peft"]);
  assert.equal(patches[0].parameter, `${ATTN}.to_q.weight`);

  await assert.rejects(readLora(path, { unet: [] }), { name: "ModelFormatError", message: new RegExp(`^LoRA file ${path.replaceAll(".", "\\.")} cannot be applied`) });
  await assert.rejects(readLora(join(dir, "missing.safetensors"), NAMES), { name: "ModelFormatError", message: /Cannot read LoRA file .*missing\.safetensors/ });
  const pt = join(dir, "unet_lora.pt");
  await writeFile(pt, Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0]));
  await assert.rejects(readLora(pt, NAMES), { name: "ModelFormatError", message: /unet_lora\.pt is a PyTorch pickle.*torch\.load\(weights_only=True\).*torchvid convert --lora ".*unet_lora\.pt" ".*unet_lora\.safetensors"/ });
});

test("bad arguments are TypeErrors naming them", () => {
  const file = makeFile({ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } });
  assert.throws(() => parseLora(null as unknown as SafetensorsFile, NAMES), { name: "TypeError", message: /for file/ });
  assert.throws(() => parseLora(file, undefined as unknown as LoraParameterNames), { name: "TypeError", message: /for parameterNames/ });
  assert.throws(() => parseLora(file, { unet: "x" as unknown as string[] }), { name: "TypeError", message: /for parameterNames\.unet/ });
  assert.throws(() => parseLora(file, NAMES, { strict: "no" as unknown as boolean }), { name: "TypeError", message: /options\.strict/ });
});

test("fuseLora refuses a LoRA for another model size before touching any weight", async () => {
  // Duck-typed stand-ins: the shape check runs before any native tensor is created.
  const file = makeFile({ [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] }, [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] } });
  const patches = parseLora(file, NAMES);
  const restored: string[] = [];
  const fake = (shape: number[]) =>
    ({
      shape,
      numel: shape.reduce((a, b) => a * b, 1),
      device: "cpu",
      dtype: "float32",
      clone: () => ({ disposed: false }),
      copyFrom: () => restored.push("copy"),
    }) as unknown as Tensor;
  await assert.rejects(fuseLora(patches, () => fake([32, 32])), (err: unknown) => {
    assert.ok(err instanceof TorchvidError);
    assert.equal(err.code, "ERR_TORCHVID_SHAPE");
    assert.match(err.message, /is \[16, 16\].*but the weight is \[32, 32\]/);
    return true;
  });
  assert.deepEqual(restored, ["copy"]);
  await assert.rejects(fuseLora(patches, () => fake([16, 16]), { scale: "x" as unknown as number }), /options\.scale/);
  await assert.rejects(fuseLora("x" as unknown as LoraPatch[], () => fake([16, 16])), TypeError);
});

// ---- merging (needs the native addon; skipped where it is not built) -----------------------

const { Tensor: TensorClass } = await import("../lib/tensor.ts");
const nativeReason = await (async () => {
  try {
    TensorClass.zeros([1]).dispose();
    return undefined;
  } catch (err) {
    return `native addon not available: ${(err as Error).message.split("\n")[0]}`;
  }
})();

/** W + factor * reshape(up @ down), computed in float64 on the host. */
function expectedMerge(weight: Float32Array, up: LoraPatch["up"], down: LoraPatch["down"], factor: number, upValues: number[], downValues: number[]): Float64Array {
  const [out, rank] = up.shape;
  const inner = down.shape.slice(1).reduce((a, b) => a * b, 1);
  const result = Float64Array.from(weight);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inner; i++) {
      let sum = 0;
      for (let r = 0; r < rank; r++) sum += upValues[o * rank + r] * downValues[r * inner + i];
      result[o * inner + i] += factor * sum;
    }
  }
  return result;
}

const seq = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

test("fuseLora merges W += userScale * alpha/rank * up @ down and unfuse restores W exactly", { skip: nativeReason }, async () => {
  const upValues = seq(16 * 4, (i) => Math.sin(i) / 4);
  const downValues = seq(4 * 16, (i) => Math.cos(i * 0.7) / 4);
  const convUp = seq(16 * 2, (i) => ((i % 5) - 2) / 8);
  const convDown = seq(2 * 16 * 9, (i) => ((i % 7) - 3) / 16);
  const file = makeFile({
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": { shape: [4, 16], values: downValues },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": { shape: [16, 4], values: upValues },
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha": { shape: [], values: [2] },
    "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": { shape: [2, 16, 3, 3], values: convDown },
    "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": { shape: [16, 2, 1, 1], values: convUp },
  });
  const patches = parseLora(file, NAMES);
  const [linear, conv] = [`${ATTN}.to_q.weight`, "down_blocks.0.resnets.0.conv1.weight"].map((name) => patches.find((p) => p.parameter === name)!);
  const originals = {
    [linear.parameter]: Float32Array.from(seq(256, (i) => (i % 13) / 13 - 0.5)),
    [conv.parameter]: Float32Array.from(seq(16 * 16 * 9, (i) => (i % 11) / 11 - 0.5)),
  };
  const shapes = { [linear.parameter]: [16, 16], [conv.parameter]: [16, 16, 3, 3] };

  for (const dtype of ["float32", "bfloat16", "float16"] as const) {
    const weights = new Map(Object.entries(originals).map(([name, data]) => [name, TensorClass.from(data, shapes[name], { dtype })]));
    const before = new Map([...weights].map(([name, w]) => [name, w.dataSync() as Float32Array]));
    const fused = await fuseLora(patches, (component, name) => {
      assert.equal(component, "unet");
      return weights.get(name)!;
    }, { scale: 0.5 });
    assert.deepEqual(fused.parameters.sort(), [`unet:${linear.parameter}`, `unet:${conv.parameter}`]);
    const tolerance = dtype === "float32" ? 1e-5 : dtype === "float16" ? 4e-3 : 2e-2;
    for (const [patch, up, down] of [[linear, upValues, downValues], [conv, convUp, convDown]] as const) {
      const want = expectedMerge(before.get(patch.parameter)!, patch.up, patch.down, 0.5 * patch.scale, up, down);
      const got = weights.get(patch.parameter)!.dataSync() as Float32Array;
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      assert.ok(worst < tolerance, `${dtype} ${patch.parameter}: max abs error ${worst}`);
      assert.ok(worst > 0 || patch.scale === 0, "the weight changed");
    }
    fused.unfuse();
    for (const [name, w] of weights) assert.deepEqual(w.dataSync(), before.get(name), `${dtype} ${name} restored bit for bit`);
    assert.equal(fused.fused, false);
    fused.unfuse(); // a second unfuse is a no-op
  }
});

test("fuseLora restores already merged weights when a later patch fails", { skip: nativeReason }, async () => {
  const file = makeFile({
    [`unet.${ATTN}.to_q.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_q.lora_B.weight`]: { shape: [16, 4] },
    [`unet.${ATTN}.to_k.lora_A.weight`]: { shape: [4, 16] },
    [`unet.${ATTN}.to_k.lora_B.weight`]: { shape: [16, 4] },
  });
  const good = TensorClass.from(seq(256, (i) => i / 256), [16, 16]);
  const wrong = TensorClass.from(seq(32 * 32, () => 1), [32, 32]);
  const before = good.dataSync();
  await assert.rejects(fuseLora(parseLora(file, NAMES), (_c, name) => (name.includes("to_q") ? good : wrong)), { code: "ERR_TORCHVID_SHAPE" });
  assert.deepEqual(good.dataSync(), before);
});
