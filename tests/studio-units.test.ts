/**
 * The studio's small parts on their own: the latent -> RGB preview against the same map computed
 * by hand in plain JS, the traversal guard, names allowed in --out, and the device queue's
 * positions, cancel and limit (with a stand-in worker).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { Tensor } from "../lib/index.ts";
import { JobQueue, QueueFullError } from "../lib/studio/job-queue.ts";
import { fileInOut, isJobId, newJobId } from "../lib/studio/paths.ts";
import { encodePreview, LATENT_RGB_FACTORS, latentPreviewTensor } from "../lib/studio/preview.ts";
import { isTraversal } from "../lib/studio/security.ts";

describe("latent preview", () => {
  it("maps every latent pixel through ComfyUI's SD 1.x factors, frames side by side", async () => {
    const [b, c, f, h, w] = [2, 4, 3, 5, 6];
    const data = Float32Array.from({ length: b * c * f * h * w }, (_, i) => Math.sin(i * 0.37) * 1.8);
    const latents = Tensor.from(data, [b, c, f, h, w]);
    const preview = latentPreviewTensor(latents);
    assert.deepEqual(preview.strip.shape, [h, f * w, 3]);
    const got = (await preview.strip.data()) as Uint8Array;
    preview.strip.dispose();
    latents.dispose();
    // By hand: batch 0, pixel (frame, y, x) lands at row y, column frame * w + x.
    let maxDiff = 0;
    for (let fr = 0; fr < f; fr++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let rgb = 0; rgb < 3; rgb++) {
            let v = 0;
            for (let ch = 0; ch < c; ch++) v += data[(((0 * c + ch) * f + fr) * h + y) * w + x] * LATENT_RGB_FACTORS[ch][rgb];
            const expected = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
            maxDiff = Math.max(maxDiff, Math.abs(got[(y * f * w + fr * w + x) * 3 + rgb] - expected));
          }
        }
      }
    }
    assert.ok(maxDiff <= 1, `off by ${maxDiff}`);
  });

  it("keeps at most 16 frames (every k-th) and encodes a PNG of the strip", async () => {
    const latents = Tensor.from(new Float32Array(1 * 4 * 40 * 2 * 3), [1, 4, 40, 2, 3]);
    const p = await encodePreview(7, latentPreviewTensor(latents));
    latents.dispose();
    assert.deepEqual([p.step, p.frames, p.width, p.height], [7, 14, 3, 2]); // every 3rd of 40
    const meta = await sharp(Buffer.from(p.image.split(",")[1], "base64")).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["png", 42, 2]);
  });
});

describe("paths", () => {
  it("refuses traversal, encoded once, twice or with backslashes", () => {
    for (const bad of ["/files/../x", "/files/..%2fx", "/%2e%2e/x", "/files/%252e%252e%252fx", "/a/..", "/files/..\\x", "/files/%5c", "/files/%00", "/files/%E0%A4%A", "/x/%2E%2E%2F%2E%2E%2Fetc"]) {
      assert.equal(isTraversal(bad), true, bad);
    }
    for (const ok of ["/", "/app.js", "/files/abc.mp4", "/files/a..b.mp4", "/api/jobs/abc?x=../y"]) assert.equal(isTraversal(ok), false, ok);
  });

  it("serves only plain names inside --out", () => {
    assert.equal(fileInOut("/srv/out", "abc.mp4"), "/srv/out/abc.mp4");
    for (const bad of ["../abc.mp4", ".hidden", "a/b.mp4", "/etc/passwd", "..", "", "a\\b", "a..mp4"]) assert.equal(fileInOut("/srv/out", bad), null, bad);
    const id = newJobId();
    assert.ok(isJobId(id), id);
    assert.equal(isJobId("../x"), false);
  });
});

describe("device queue", () => {
  it("runs one job at a time in order, reports positions, cancels waiting and running jobs, refuses past its limit", async () => {
    const log: string[] = [];
    const gates = new Map<string, () => void>();
    const queue = new JobQueue(
      (id, signal) =>
        new Promise<void>((resolve) => {
          log.push(`start ${id}`);
          const finish = () => {
            log.push(`${signal.aborted ? "abort" : "end"} ${id}`);
            resolve();
          };
          gates.set(id, finish);
          signal.addEventListener("abort", finish);
        }),
      { limit: 3, onChange: () => {} },
    );
    queue.push("a");
    queue.push("b");
    queue.push("c");
    assert.throws(() => queue.push("d"), QueueFullError);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual([queue.position("a"), queue.position("b"), queue.position("c"), queue.position("z")], [0, 1, 2, null]);
    assert.equal(queue.cancel("b"), "removed");
    assert.equal(queue.position("c"), 1);
    gates.get("a")!();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(queue.runningId, "c");
    assert.equal(queue.cancel("c"), "aborting");
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(log, ["start a", "end a", "start c", "abort c"]);
    assert.equal(queue.size, 0);
    assert.equal(queue.cancel("c"), null);
  });
});
