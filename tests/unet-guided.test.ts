// UNet3DConditionModel.forwardGuided: classifier-free guidance around the forward in one device
// task must give exactly the floats of the JS sequence it replaced (forward on the doubled batch,
// then text -= uncond; uncond += g * text), and a plain forward without guidance.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { join } from "node:path";
import { TextToVideoSDPipeline, Tensor, TorchModule, TorchvidError } from "../lib/index.ts";
import { nativeFixtures } from "./helpers/native-fixtures.ts";
import { referenceModel } from "./helpers/reference-model.ts";

let pipe: TextToVideoSDPipeline;
let sample: Tensor;
let embeds: Tensor;

before(async () => {
  pipe = await TextToVideoSDPipeline.fromPretrained(referenceModel(), { device: "cpu" });
  const m = pipe.unet.spatialMultiple;
  sample = Tensor.randn([1, pipe.unet.inChannels, 3, 2 * m, 2 * m], { seed: 1 });
  embeds = Tensor.randn([2, 77, Number(pipe.unet.config.cross_attention_dim)], { seed: 2 });
});

const floats = (t: Tensor) => Array.from(t.dataSync() as Float32Array);

describe("UNet forwardGuided", () => {
  it("equals forward on the doubled batch followed by the JS guidance, bit for bit, and times the forward", async () => {
    const g = 7.5;
    const { prediction, forwardMs } = await pipe.unet.forwardGuided(sample, 401, embeds, g);
    const doubled = Tensor.cat([sample, sample], 0);
    const out = await pipe.unet.forward(doubled, 401, embeds);
    const [uncond, text] = out.chunk(2, 0);
    text.addInPlace(uncond, -1);
    uncond.axpbyInPlace(1, g, text);
    assert.deepEqual(prediction.shape, sample.shape);
    assert.deepEqual(floats(prediction), floats(uncond));
    // Guidance really happened: the plain uncond half differs from the guided prediction.
    const [plainUncond] = (await pipe.unet.forward(doubled, 401, embeds)).chunk(2, 0);
    assert.notDeepEqual(floats(plainUncond), floats(prediction));
    assert.ok(forwardMs > 0 && forwardMs < 60_000, `forwardMs ${forwardMs}`);
  });

  it("without guidance (scale <= 1) is a plain forward of the batch as given", async () => {
    const textOnly = embeds.slice(0, 1, 2);
    const { prediction } = await pipe.unet.forwardGuided(sample, 401, textOnly, 1);
    assert.deepEqual(floats(prediction), floats(await pipe.unet.forward(sample, 401, textOnly)));
  });

  it("names the UNet and the doubled shape when the inputs do not fit", async () => {
    const wrong = Tensor.randn([1, pipe.unet.inChannels + 1, 3, 8, 8]);
    await assert.rejects(pipe.unet.forwardGuided(wrong, 401, embeds, 9), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_FORWARD");
      assert.match(e.message, /The UNet/);
      assert.match(e.message, /\[2, 5, 3, 8, 8\]/);
      return true;
    });
  });

  it("TorchModule.runGuided refuses a module that returns a tuple, and a doubled index that is not a tensor input", async () => {
    const pair = await TorchModule.load(join(nativeFixtures().dir, "pair.pt"));
    await assert.rejects(pair.runGuided("forward", [Tensor.from([1, 2], [2, 1]), 1, 2.5], 0, 3), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_FORWARD");
      assert.match(e.message, /expected one tensor/);
      return true;
    });
    await assert.rejects(pair.runGuided("forward", [Tensor.from([1, 2], [2, 1]), 1, 2.5], 1, 3), /doubled/);
    await assert.rejects(pair.runGuided("forward", [Tensor.from([1, 2], [2, 1]), 1, 2.5], 3, 3), /doubled/);
  });
});
