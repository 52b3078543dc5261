// Tensor handle ops against hand-derived values and Python torch results.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Generator, Tensor } from "../lib/tensor.ts";
import { assertAllClose, assertClose } from "./helpers/assert-close.ts";
import { nativeFixtures } from "./helpers/native-fixtures.ts";

const arr = (t: Tensor) => Array.from(t.dataSync() as Float32Array);

describe("Tensor creation and read-back", () => {
  it("round-trips every host array type with shape, dtype and device", () => {
    const f = Tensor.from(new Float32Array([1.5, -2, 3, 4, 5, 6]), [2, 3]);
    assert.deepEqual(f.shape, [2, 3]);
    assert.equal(f.dtype, "float32");
    assert.equal(f.device, "cpu");
    assert.deepEqual(arr(f), [1.5, -2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(Tensor.from(new Int32Array([7, -8]), [2]).dataSync() as Int32Array), [7, -8]);
    assert.deepEqual(Array.from(Tensor.from(new Uint8Array([0, 255]), [2]).dataSync() as Uint8Array), [0, 255]);
    assert.deepEqual(Array.from(Tensor.from(new Float64Array([0.1, 1e300]), [2]).dataSync() as Float64Array), [0.1, 1e300]);
    assert.deepEqual(Array.from(Tensor.from(new BigInt64Array([2n ** 40n]), [1]).dataSync() as BigInt64Array), [2n ** 40n]);
    assert.equal(Tensor.from(new Float64Array([1]), [1]).dtype, "float64");
  });

  it("casts on creation and on to(): bfloat16 rounds to 8 bits of mantissa", () => {
    const b = Tensor.from(new Float32Array([1.00390625, 3.14159]), [2], { dtype: "bfloat16" });
    assert.equal(b.dtype, "bfloat16");
    assert.deepEqual(arr(b), [1, 3.140625]);
    const u = Tensor.from([1.4, 1.6, 254.7], [3]).round().to("uint8");
    assert.deepEqual(Array.from(u.dataSync() as Uint8Array), [1, 2, 255]);
  });

  it("reads asynchronously with data()", async () => {
    const t = Tensor.from([1, 2, 3], [3]);
    assert.deepEqual(Array.from((await t.data()) as Float32Array), [1, 2, 3]);
  });

  it("zeros", () => {
    assert.deepEqual(arr(Tensor.zeros([2, 2])), [0, 0, 0, 0]);
    assert.equal(Tensor.zeros([1], { dtype: "int64" }).dtype, "int64");
  });
});

describe("element-wise ops (hand-derived)", () => {
  const a = () => Tensor.from([1, -2, 3, 4], [2, 2]);
  const b = () => Tensor.from([0.5, 2, -1, 8], [2, 2]);
  it("add / sub / mul / div with tensors and scalars", () => {
    assert.deepEqual(arr(a().add(b())), [1.5, 0, 2, 12]);
    assert.deepEqual(arr(a().add(b(), 2)), [2, 2, 1, 20]);
    assert.deepEqual(arr(a().add(10)), [11, 8, 13, 14]);
    assert.deepEqual(arr(a().sub(b())), [0.5, -4, 4, -4]);
    assert.deepEqual(arr(a().sub(1)), [0, -3, 2, 3]);
    assert.deepEqual(arr(a().mul(b())), [0.5, -4, -3, 32]);
    assert.deepEqual(arr(a().mul(-0.5)), [-0.5, 1, -1.5, -2]);
    assert.deepEqual(arr(a().div(b())), [2, -1, -3, 0.5]);
    assert.deepEqual(arr(a().div(4)), [0.25, -0.5, 0.75, 1]);
  });
  it("broadcasts a [2,1] tensor over [2,2]", () => {
    assert.deepEqual(arr(a().mul(Tensor.from([2, 10], [2, 1]))), [2, -4, 30, 40]);
  });
  it("axpby = a*x + b*y", () => {
    assert.deepEqual(arr(a().axpby(2, -3, b())), [0.5, -10, 9, -16]);
    // broadcasting y
    assert.deepEqual(arr(a().axpby(1, 1, Tensor.from([1], [1]))), [2, -1, 4, 5]);
  });
  it("axpbyInPlace and mulInPlace change the tensor itself, bit for bit as axpby/mul", () => {
    const x = a();
    x.axpbyInPlace(2, -3, b());
    assert.deepEqual(arr(x), [0.5, -10, 9, -16]);
    x.axpbyInPlace(1, 1, Tensor.from([1], [1]));
    assert.deepEqual(arr(x), [1.5, -9, 10, -15]);
    x.mulInPlace(-2);
    assert.deepEqual(arr(x), [-3, 18, -20, 30]);
    // Non-representable coefficients: the in-place result equals the allocating one exactly.
    const noise = Tensor.randn([64], { seed: 3 });
    const y = Tensor.randn([64], { seed: 4 });
    const expected = arr(noise.axpby(0.1234567, 0.9876543, y));
    noise.axpbyInPlace(0.1234567, 0.9876543, y);
    assert.deepEqual(arr(noise), expected);
    // y must broadcast to x: an in-place update cannot grow the tensor.
    assert.throws(() => Tensor.from([1], [1]).axpbyInPlace(1, 1, a()), (e: Error & { code?: string }) => e.code === "ERR_TORCHVID_SHAPE" && /cannot grow/.test(e.message));
  });
  it("sqrt, abs, round, clamp", () => {
    assert.deepEqual(arr(Tensor.from([4, 9, 0.25], [3]).sqrt()), [2, 3, 0.5]);
    assert.deepEqual(arr(a().abs()), [1, 2, 3, 4]);
    assert.deepEqual(arr(Tensor.from([0.4, 0.6, -1.6, 2.5], [4]).round()), [0, 1, -2, 2]);
    assert.deepEqual(arr(a().clamp(-1, 2)), [1, -1, 2, 2]);
    assert.deepEqual(arr(a().clamp(null, 0)), [0, -2, 0, 0]);
    assert.deepEqual(arr(a().clamp(0)), [1, 0, 3, 4]);
    assert.deepEqual(arr(a().clampTensor(Tensor.from([0, -1], [2, 1]), Tensor.from([2, 3.5], [2, 1]))), [1, 0, 3, 3.5]);
  });
  it("sum, quantile, matmul, repeatInterleave match Python torch", () => {
    const { ops } = nativeFixtures().expected;
    const x = Tensor.from([1, -2, 3, 4, 5.5, -6], [2, 3]);
    const y = Tensor.from([0.5, 2, -1, 3, -0.25, 2], [2, 3]);
    assert.deepEqual(arr(x.sum()), [5.5]);
    assert.deepEqual(arr(x.sum(0)), [5, 3.5, -3]);
    assert.deepEqual(x.sum(1, true).shape, [2, 1]);
    assertClose(arr(x.quantile(0.7, 1)), ops["quantile_0.7_dim1"], 1e-6, "quantile");
    assertClose(arr(x.matmul(y.permute([1, 0]))), ops.matmul, 1e-6, "matmul");
    assert.deepEqual(arr(x.repeatInterleave(2, 0)), ops.repeat_interleave);
  });
});

describe("structural ops", () => {
  const x = () => Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]);
  it("cat along any dim, including negative", () => {
    assert.deepEqual(arr(Tensor.cat([x(), x()], 0)), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    const c = Tensor.cat([x(), x()], -1);
    assert.deepEqual(c.shape, [2, 6]);
    assert.deepEqual(arr(c), [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
  });
  it("chunk and slice", () => {
    const [p, q] = x().chunk(2, 0);
    assert.deepEqual(arr(p), [0, 1, 2]);
    assert.deepEqual(arr(q), [3, 4, 5]);
    assert.equal(x().chunk(3, 1).length, 3);
    assert.deepEqual(arr(x().slice(1, 1)), [1, 2, 4, 5]);
    assert.deepEqual(arr(x().slice(1, 0, 3, 2)), [0, 2, 3, 5]);
    assert.deepEqual(arr(x().slice(0, 1, 2)), [3, 4, 5]);
  });
  it("permute, reshape, contiguous, clone", () => {
    const t = x().permute([1, 0]);
    assert.deepEqual(t.shape, [3, 2]);
    assert.deepEqual(arr(t.contiguous()), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(x().reshape([3, -1]).shape, [3, 2]);
    const c = x().clone();
    c.addInPlace(Tensor.from([1], [1]), 2);
    assert.deepEqual(arr(c), [2, 3, 4, 5, 6, 7]);
  });
  it("copyFrom and addInPlace change the tensor itself", () => {
    const t = Tensor.zeros([2, 3]);
    t.copyFrom(x());
    assert.deepEqual(arr(t), [0, 1, 2, 3, 4, 5]);
    t.addInPlace(x(), -1);
    assert.deepEqual(arr(t), [0, 0, 0, 0, 0, 0]);
  });
  it("toDevice('cpu') copies off the JS thread", async () => {
    const t = await x().toDevice("cpu");
    assert.deepEqual(arr(t), [0, 1, 2, 3, 4, 5]);
  });
});

describe("randn is bit-identical to torch.randn with a seeded CPU generator", () => {
  const { randn } = nativeFixtures().expected;
  for (const key of Object.keys(randn).filter((k) => !k.startsWith("sequence"))) {
    it(`seed:shape ${key}`, () => {
      const [seed, shape] = key.split(":");
      const dims = shape.split("x").map(Number);
      const s = BigInt(seed) > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(seed) : Number(seed);
      const t = Tensor.randn(dims, { seed: s });
      assert.deepEqual(t.shape, dims);
      assert.deepEqual(Array.from(t.dataSync() as Float32Array), (randn[key] as number[]).map(Math.fround));
    });
  }
  it("successive draws from one generator continue the same stream", () => {
    const [first, second] = randn["sequence:7"] as number[][];
    const g = new Generator(7);
    assert.deepEqual(arr(Tensor.randn([5], { generator: g })), first.map(Math.fround));
    assert.deepEqual(arr(Tensor.randn([20], { generator: g })), second.map(Math.fround));
  });
  it("getState/setState replays the same draws; BigInt and number seeds agree", () => {
    const g = new Generator(123);
    const state = g.getState();
    const a = arr(Tensor.randn([4], { generator: g }));
    g.setState(state);
    assert.deepEqual(arr(Tensor.randn([4], { generator: g })), a);
    assert.deepEqual(arr(Tensor.randn([4], { seed: 123n })), a);
    assert.equal(new Generator(5).initialSeed, 5n);
  });
  it("casts after drawing in float32 (bfloat16 noise = rounded float32 noise)", () => {
    const f = arr(Tensor.randn([8], { seed: 3 }));
    const b = arr(Tensor.randn([8], { seed: 3, dtype: "bfloat16" }));
    assertAllClose(b, f, 2 ** -8, 0, "bf16 noise");
  });
});

describe("videoFrames (decoded video -> host frames, on the device thread)", () => {
  // [B=1, C=3, F=2, H=1, W=2]: channel c, frame f, column w holds vals[c][f][w].
  const vals = [
    [[-1.5, -1], [0, 0.3]],
    [[1, 2], [-0.2, 0.5]],
    [[0.999, -0.999], [0.25, -0.25]],
  ];
  const video = () => Tensor.from(vals.flat(2), [1, 3, 2, 1, 2]);
  const unit = (x: number) => Math.min(1, Math.max(0, x * 0.5 + 0.5));
  // [F][H][W][C] order, the layout of every Video
  const expected = (map: (x: number) => number) => [0, 1].flatMap((f) => [0, 1].flatMap((w) => [0, 1, 2].map((c) => map(vals[c]![f]![w]!))));

  it("uint8: clamp((x + 1) / 2) x 255, rounded half to even, frames-rows-columns-RGB", async () => {
    const data = await video().videoFrames("uint8");
    assert.ok(data instanceof Uint8Array);
    // 0 -> 127.5 -> 128 (half to even); 0.3 -> 165.75 -> 166; -0.2 -> 102; 0.25 -> 159.375 -> 159
    assert.deepEqual(Array.from(data), [0, 255, 255, 0, 255, 0, 128, 102, 159, 166, 191, 96]);
    assert.deepEqual(Array.from(data), expected((x) => { const v = unit(Math.fround(x)) * 255; const r = Math.round(v); return v - Math.floor(v) === 0.5 && r % 2 === 1 ? r - 1 : r; }));
  });

  it("float: clamp((x + 1) / 2) in the same layout", async () => {
    const data = await video().videoFrames("float");
    assert.ok(data instanceof Float32Array);
    assertAllClose(Array.from(data), expected((x) => unit(Math.fround(x))), 0, 1e-7);
  });

  it("refuses a tensor that is not [B, 3, F, H, W] and an unknown type", async () => {
    await assert.rejects(Tensor.from([1, 2], [2]).videoFrames("uint8"), RangeError);
    await assert.rejects(video().videoFrames("png" as never), RangeError);
  });
});
