/**
 * lib/unet-flops.ts against an independent count: the converter's own UNet modules run eagerly
 * in Python torch with forward hooks (bench/python/count_unet_flops.py: 2 x MACs of every
 * Conv2d / Conv3d / Linear from its shapes, attention matmuls from the q/k/v the core receives).
 * Full-size configs run on the meta device (shapes only).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { unetFlops, formatFlops } from "../lib/unet-flops.ts";
import { pythonWithTorch, runPython } from "./helpers/python.ts";

const root = join(import.meta.dirname, "..");
const TINY = join(root, "tools/convert/assets/configs/tiny/unet/config.json");
const MS = join(root, "tools/convert/assets/configs/ms-1.7b/unet/config.json");
const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>;

function hookCount(config: string, b: number, f: number, h: number, w: number, meta: boolean) {
  const out = runPython([join(root, "bench/python/count_unet_flops.py"), config, String(b), String(f), String(h), String(w), ...(meta ? ["--meta"] : [])], { cwd: root });
  return JSON.parse(out) as { total: number; conv: number; linear: number; attention: number };
}

const cases: [string, string, number, number, number, number, boolean][] = [
  ["tiny 2x3x8x8", TINY, 2, 3, 8, 8, false],
  ["tiny 1x2x5x7 (odd sizes: forward_upsample_size)", TINY, 1, 2, 5, 7, false],
  ["tiny 2x16x16x16", TINY, 2, 16, 16, 16, false],
  ["ms-1.7b B=2 16x256x256 (meta)", MS, 2, 16, 32, 32, true],
  ["zeroscope-576w B=2 24x576x320 (meta)", MS, 2, 24, 40, 72, true],
];

for (const [name, config, b, f, h, w, meta] of cases) {
  test(`unetFlops matches the hook count on the converter's modules: ${name}`, { skip: pythonWithTorch() ? false : "no python3 with torch" }, () => {
    const ours = unetFlops(readJson(config), { batch: b, frames: f, height: h, width: w });
    const ref = hookCount(config, b, f, h, w, meta);
    for (const key of ["total", "conv", "linear", "attention"] as const) {
      const rel = Math.abs(ours[key] - ref[key]) / ref[key];
      assert.ok(rel < 0.01, `${key}: ours ${ours[key]} vs hooks ${ref[key]} (${(rel * 100).toFixed(3)}%)`);
    }
    const sum = Object.values(ours.byBlock).reduce((a, v) => a + v, 0);
    assert.equal(sum, ours.total);
  });
}

test("unetFlops scales linearly with batch and rejects bad shapes", () => {
  const cfg = readJson(MS);
  const one = unetFlops(cfg, { batch: 1, frames: 16, height: 32, width: 32 });
  const two = unetFlops(cfg, { batch: 2, frames: 16, height: 32, width: 32 });
  assert.equal(two.total, 2 * one.total);
  assert.throws(() => unetFlops(cfg, { height: 0, width: 32 }), RangeError);
  assert.throws(() => unetFlops({ ...cfg, num_attention_heads: 8 }, { height: 8, width: 8 }), TypeError);
  assert.equal(formatFlops(9.77e12), "9.77 TFLOP");
});
