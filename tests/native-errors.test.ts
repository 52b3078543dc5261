// The process never dies from a native error: every binding entry point turns any C++ exception
// into a JS error, each error path leaves the addon usable, and the same bad input again gives
// the same error.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { TorchModule } from "../lib/module.ts";
import { native } from "../lib/native.ts";
import { Tensor } from "../lib/tensor.ts";
import type { TorchvidError } from "../lib/errors.ts";
import { nativeFixtures } from "./helpers/native-fixtures.ts";

const fx = nativeFixtures();
const file = (name: string) => join(fx.dir, name);
const arr = (t: Tensor) => Array.from(t.dataSync() as Float32Array);
const hasCode = (code: string, message?: RegExp) => (e: TorchvidError) => {
  assert.equal(e.code, code, `${e.code}: ${e.message}`);
  if (message) assert.match(e.message, message);
  return true;
};

describe("the process never dies from a native error", () => {
  it("every native function and method, called with bad arguments, a wrong `this` or a disposed handle, throws and the addon still works", () => {
    const probe = fileURLToPath(new URL("./native/error-paths-probe.ts", import.meta.url));
    const out = execFileSync(process.execPath, ["--import", "tsx", probe, fx.dir], { encoding: "utf8", maxBuffer: 64 << 20 });
    const { results, after } = JSON.parse(out.trim().split("\n").pop()!) as { results: Record<string, string[]>; after: { forward: number[]; sum: number[] } };
    const names = Object.keys(results);
    // The sweep really reached the whole surface (a probe that silently skipped would pass otherwise).
    for (const expected of ["info", "setNumThreads", "emptyCache", "synchronize", "memoryStats", "Tensor.fromArray", "Tensor.randn", "Module.load",
      "Tensor.prototype.axpbyInPlace", "Tensor.prototype.toArray", "Module.prototype.run", "Module.prototype.runGuided", "Module.prototype.to", "Generator.prototype.setState",
      "disposed Tensor.add", "disposed Module.run", "new Tensor"]) {
      assert.ok(names.includes(expected), `the probe did not call ${expected}`);
    }
    assert.ok(names.length > 90, `only ${names.length} entry points probed`);
    // Functions that need arguments refuse to run without them, with a message.
    for (const name of ["setNumThreads", "Tensor.fromArray", "Module.load", "Tensor.prototype.add", "Module.prototype.run", "Generator.prototype.manualSeed"]) {
      assert.match(results[name]![0]!, /^(threw|rejected): \w*Error: Expected/, `${name}: ${results[name]![0]}`);
    }
    for (const [name, outcomes] of Object.entries(results)) {
      for (const o of outcomes) {
        if (o.startsWith("threw") || o.startsWith("rejected")) assert.doesNotMatch(o, /: $/, `${name} failed without a message`);
      }
      // A disposed handle is refused (arguments may be checked first).
      if (name.startsWith("disposed ")) assert.ok(outcomes.every((o) => /^(threw|rejected)/.test(o)), `${name}: ${outcomes.join(" | ")}`);
    }
    assert.ok(Object.entries(results).filter(([k]) => k.startsWith("disposed ")).some(([, o]) => /disposed/.test(o[0]!)));
    assert.equal(after.forward.length, 6);
    assert.deepEqual(after.sum, [2, 4, 6, 8]);
  });

  it("out of memory in the middle of a forward rejects with ERR_TORCHVID_OOM, again the second time, and the next forward succeeds", async () => {
    const m = await TorchModule.load(file("allocates.pt"));
    const x = Tensor.from([1, 2, 3], [3]);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(m.forward(x, 2 ** 42), hasCode("ERR_TORCHVID_OOM", /allocate/));
    }
    assert.deepEqual(arr((await m.forward(x, 4)) as Tensor), [2, 4, 6]);
    native().emptyCache(); // what error paths call: must not throw
  });

  it("a forward with wrong shapes rejects with ERR_TORCHVID_FORWARD, again the second time, and the next forward succeeds", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    for (let i = 0; i < 2; i++) await assert.rejects(m.forward(Tensor.zeros([3, 5])), hasCode("ERR_TORCHVID_FORWARD", /mat1 and mat2|size mismatch|cannot be multiplied/));
    const out = arr((await m.forward(Tensor.from(fx.expected.affine_input, [2, 4]))) as Tensor);
    out.forEach((v, i) => assert.ok(Math.abs(v - fx.expected.affine_output[i]!) < 1e-6));
  });

  it("a CUDA device asked of a CPU build is ERR_TORCHVID_DEVICE everywhere, and the module stays whole on the CPU", async () => {
    if (native().builtWith.cuda) return; // a CUDA build answers differently (tested on GPU machines)
    const m = await TorchModule.load(file("affine.pt"));
    const cuda = hasCode("ERR_TORCHVID_DEVICE", /CPU-only libtorch/);
    await assert.rejects(TorchModule.load(file("affine.pt"), { device: "cuda" }), cuda);
    await assert.rejects(m.to("cuda:0"), cuda);
    await assert.rejects(Tensor.zeros([2]).toDevice("cuda"), cuda);
    assert.throws(() => Tensor.zeros([2], { device: "cuda:1" }), cuda);
    assert.equal(m.device, "cpu");
    const out = arr((await m.forward(Tensor.from(fx.expected.affine_input, [2, 4]))) as Tensor);
    out.forEach((v, i) => assert.ok(Math.abs(v - fx.expected.affine_output[i]!) < 1e-6));
  });

  it("a move that fails part way (out of memory) is rolled back: every weight on its old device and dtype, device/dtype unchanged, same outputs", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    const input = Tensor.from(fx.expected.affine_input, [2, 4]);
    const before = arr((await m.forward(input)) as Tensor);
    const weight = arr(m.parameter("linear.weight"));
    native().testHooks.failNextMoveAfter(1); // the first tensor moves, the second fails
    await assert.rejects(m.to("cpu", "bfloat16"), hasCode("ERR_TORCHVID_OOM", /simulated/));
    assert.equal(m.dtype, "float32");
    assert.equal(m.device, "cpu");
    for (const p of m.namedParameters()) assert.equal(p.dtype, "float32", `${p.name} was left cast`);
    assert.deepEqual(arr(m.parameter("linear.weight")), weight);
    assert.deepEqual(arr((await m.forward(input)) as Tensor), before);
    // The same move again, without the fault, succeeds.
    await m.to("cpu", "bfloat16");
    assert.equal(m.dtype, "bfloat16");
    for (const p of m.namedParameters()) assert.equal(p.dtype, "bfloat16");
  });
});
