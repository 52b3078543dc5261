// TorchScript modules created by Python torch: forward results, run-time attributes,
// parameters, dtypes, threading and errors.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TorchModule } from "../lib/module.ts";
import { Tensor } from "../lib/tensor.ts";
import { TorchvidError } from "../lib/errors.ts";
import { assertClose } from "./helpers/assert-close.ts";
import { nativeFixtures } from "./helpers/native-fixtures.ts";

const fx = nativeFixtures();
const file = (name: string) => join(fx.dir, name);
const arr = (t: unknown) => Array.from((t as Tensor).dataSync() as Float32Array);

describe("TorchModule", () => {
  it("forward gives the Python torch result", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    assert.equal(m.device, "cpu");
    assert.equal(m.dtype, "float32");
    const out = await m.forwardTensor(Tensor.from(fx.expected.affine_input, [2, 4]));
    assert.deepEqual(out.shape, [2, 3]);
    assertClose(arr(out), fx.expected.affine_output, 1e-6, "affine");
  });

  it("loads in bfloat16 and matches Python's bfloat16 run", async () => {
    const m = await TorchModule.load(file("affine.pt"), { dtype: "bfloat16" });
    assert.equal(m.dtype, "bfloat16");
    const out = await m.forwardTensor(Tensor.from(fx.expected.affine_input, [2, 4], { dtype: "bfloat16" }));
    assert.equal(out.dtype, "bfloat16");
    assertClose(arr(out), fx.expected.affine_output_bf16, 1e-2, "affine bf16");
  });

  it("refuses float16 on the CPU with an explanation", async () => {
    await assert.rejects(TorchModule.load(file("affine.pt"), { dtype: "float16" }), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_DTYPE");
      assert.match(e.message, /float16 cannot run on the CPU.*bfloat16/);
      return true;
    });
  });

  it("returns tuples as arrays and takes int/float arguments", async () => {
    const m = await TorchModule.load(file("pair.pt"));
    const out = (await m.forward(Tensor.from([1, 2], [2]), 3, 0.5)) as Tensor[];
    assert.equal(out.length, 2);
    assert.deepEqual(arr(out[0]), [4, 5]);
    assert.deepEqual(arr(out[1]), [0.5, 1]);
  });

  it("run-time attribute changes switch the forward path", async () => {
    const m = await TorchModule.load(file("switchable.pt"));
    const x = Tensor.from([1, 2, 3, 4], [4]);
    assert.deepEqual(arr(await m.forward(x)), [3, 6, 9, 12]);
    assert.equal(m.getAttr("a", "chunk_size"), 0);
    assert.equal(await m.setAttrAll("chunk_size", 2), 2);
    assert.equal(m.getAttr("b", "chunk_size"), 2);
    assert.deepEqual(arr(await m.forward(x)), [203, 206, 209, 212]);
    await m.setAttr("a", "enabled", false);
    await m.setAttr("b", "scale", 2);
    assert.deepEqual(arr(await m.forward(x)), [1 + 102, 2 + 104, 3 + 106, 4 + 108]);
    await assert.rejects(m.setAttr("a", "chunk_size", 1.5), /is an int/);
    await assert.rejects(m.setAttr("a", "enabled", 1), /is a bool/);
    await assert.rejects(m.setAttr("zz", "chunk_size", 1), /no submodule "zz"/);
  });

  it("attribute changes queue in order with forwards: a forward started first sees the old value", async () => {
    const m = await TorchModule.load(file("switchable.pt"));
    const x = Tensor.from([1, 2, 3, 4], [4]);
    const before = m.forward(x);
    const set = m.setAttrAll("chunk_size", 2);
    const after = m.forward(x);
    assert.deepEqual(arr((await before) as Tensor), [3, 6, 9, 12]);
    assert.equal(await set, 2);
    assert.deepEqual(arr((await after) as Tensor), [203, 206, 209, 212]);
  });

  it("lists parameters and edits one in place", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    const params = m.namedParameters();
    assert.deepEqual(Object.fromEntries(params.map((p) => [p.name, p.shape])), fx.expected.affine_parameters);
    const bias = m.parameter("linear.bias");
    const before = arr(bias);
    bias.addInPlace(Tensor.from([1, 1, 1], [3]), 100);
    assert.deepEqual(arr(m.parameter("linear.bias")), before.map((v) => Math.fround(v + 100)));
    const out = arr(await m.forward(Tensor.from(fx.expected.affine_input, [2, 4])));
    assert.ok(out.every((v) => v > 90), "forward sees the edited bias");
  });

  it("moves between devices (cpu -> cpu) and reports its size", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    await m.to("cpu", "bfloat16");
    assert.equal(m.dtype, "bfloat16");
    assert.equal(m.nbytes, (12 + 3) * 2);
  });

  it("keeps the event loop running during a long forward", async () => {
    const m = await TorchModule.load(file("slow.pt"));
    const x = Tensor.randn([256, 256], { seed: 0 }).mul(0.01);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const start = performance.now();
    await m.forward(x, 400);
    const elapsed = performance.now() - start;
    clearInterval(timer);
    assert.ok(elapsed > 50, `forward took ${elapsed} ms, too short to tell`);
    assert.ok(ticks >= Math.floor(elapsed / 5 / 4), `only ${ticks} timer ticks during a ${elapsed.toFixed(0)} ms forward`);
  });

  it("queues concurrent forwards on one device; results are all correct", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    const x = Tensor.from(fx.expected.affine_input, [2, 4]);
    const outs = await Promise.all(Array.from({ length: 20 }, () => m.forwardTensor(x)));
    for (const o of outs) assertClose(arr(o), fx.expected.affine_output, 1e-6);
  });
});

describe("errors reach JS as clear errors and the process lives on", () => {
  it("missing file", async () => {
    await assert.rejects(TorchModule.load(join(fx.dir, "nope.pt")), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_MODEL_LOAD");
      assert.match(e.message, /does not exist/);
      return true;
    });
  });
  it("corrupt file (not a zip) and truncated archive", async () => {
    writeFileSync(file("garbage.pt"), "this is not torchscript");
    await assert.rejects(TorchModule.load(file("garbage.pt")), /not a TorchScript archive/);
    const { readFileSync } = await import("node:fs");
    const good = readFileSync(file("affine.pt"));
    writeFileSync(file("truncated.pt"), good.subarray(0, Math.floor(good.length / 2)));
    await assert.rejects(TorchModule.load(file("truncated.pt")), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_MODEL_LOAD");
      assert.match(e.message, /cannot load model file .*truncated\.pt/);
      return true;
    });
  });
  it("wrong input shape", async () => {
    const m = await TorchModule.load(file("affine.pt"));
    await assert.rejects(m.forward(Tensor.zeros([2, 5])), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_FORWARD");
      assert.match(e.message, /shapes cannot be multiplied|size mismatch|mat1 and mat2/);
      assert.doesNotMatch(e.message, /Exception raised from/);
      return true;
    });
    await assert.rejects(m.run("nope", []), /has no method "nope"/);
  });
  it("shape errors in ops carry ERR_TORCHVID_SHAPE", () => {
    assert.throws(() => Tensor.zeros([2, 3]).add(Tensor.zeros([4])), (e: TorchvidError) => e.code === "ERR_TORCHVID_SHAPE");
    assert.throws(() => Tensor.zeros([6]).reshape([4, -1]), (e: TorchvidError) => e.code === "ERR_TORCHVID_SHAPE");
    assert.throws(() => Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])], 0), (e: TorchvidError) => e.code === "ERR_TORCHVID_SHAPE");
  });
  it("a disposed tensor or module is refused", async () => {
    const t = Tensor.zeros([2]);
    t.dispose();
    t.dispose(); // idempotent
    assert.equal(t.disposed, true);
    assert.throws(() => t.add(1), (e: TorchvidError) => e.code === "ERR_TORCHVID_DISPOSED" && /disposed/.test(e.message));
    assert.throws(() => Tensor.zeros([2]).add(t), /disposed/);
    const m = await TorchModule.load(file("affine.pt"));
    m.dispose();
    await assert.rejects(m.forward(Tensor.zeros([2, 4])), /disposed/);
  });
  it("wrong argument types and values are TypeError/RangeError before libtorch", () => {
    assert.throws(() => Tensor.from("abc" as never, [3]), TypeError);
    assert.throws(() => Tensor.from([1, 2, 3], [2]), /holds 2 elements but data has 3/);
    assert.throws(() => Tensor.zeros([-1]), RangeError);
    assert.throws(() => Tensor.zeros([NaN]), RangeError);
    assert.throws(() => Tensor.zeros([2]).mul(NaN), /NaN/);
    assert.throws(() => Tensor.zeros([2]).mul("2" as never), TypeError);
    assert.throws(() => Tensor.zeros([2]).to("float8" as never), /Expected one of float32/);
    assert.throws(() => Tensor.zeros([2], { device: "gpu" as never }), /"cpu", "cuda" or "cuda:N"/);
    assert.throws(() => Tensor.randn([2], { seed: 1.5 }), RangeError);
    assert.throws(() => Tensor.randn([2], { seed: 2 ** 60 }), /BigInt/);
    assert.throws(() => Tensor.zeros([2]).chunk(0), RangeError);
    assert.throws(() => Tensor.zeros([2]).quantile(2, 0), RangeError);
  });
  it("an allocation the machine cannot hold is ERR_TORCHVID_OOM with advice, and the process lives on", () => {
    assert.throws(() => Tensor.zeros([2 ** 40]), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_OOM");
      assert.match(e.message, /allocate/);
      assert.match(e.message, /enableModelCpuOffload\(\), enableVaeSlicing\(\)/);
      return true;
    });
    assert.deepEqual(Array.from(Tensor.from([1], [1]).dataSync() as Float32Array), [1]);
  });

  it("asking for CUDA on a CPU-only build says what to do", () => {
    assert.throws(() => Tensor.zeros([2], { device: "cuda" }), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_DEVICE");
      assert.match(e.message, /CPU-only libtorch|CUDA is not available/);
      return true;
    });
  });
});
