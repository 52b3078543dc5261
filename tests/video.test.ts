import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import sharp from "sharp";
import {
  exportFrames,
  exportToGif,
  exportToVideo,
  exportToWebp,
  exportVideo,
  findFfmpeg,
  outputTarget,
  readVideo,
  resizeVideo,
  videoToFloat,
  videoToUint8,
  type Video,
} from "../lib/video/index.ts";

const root = mkdtempSync(join(tmpdir(), "torchvid-video-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmp = (name: string) => join(root, `${n++}-${name}`);

/** A smooth moving pattern: what a codec handles well and a diffusion model tends to produce. */
function synthetic(numFrames: number, height: number, width: number): Video & { data: Uint8Array } {
  const data = new Uint8Array(numFrames * height * width * 3);
  let i = 0;
  for (let f = 0; f < numFrames; f++)
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        data[i++] = Math.round(127.5 + 100 * Math.sin((x + 2 * f) / 10));
        data[i++] = Math.round(127.5 + 100 * Math.cos((y - f) / 12));
        data[i++] = Math.round(127.5 + 80 * Math.sin((x + y) / 16 + f / 5));
      }
  return { numFrames, height, width, data };
}

function psnr(a: Uint8Array | Float32Array, b: Uint8Array | Float32Array): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (sum / a.length));
}

/** No hidden temp files (.name.pid.xxxx.tmp) left in `dir`. */
function assertNoTemp(dir: string): void {
  const leftovers = readdirSync(dir).filter((f) => f.startsWith(".") && /\.(tmp|probe)$/.test(f));
  assert.deepEqual(leftovers, []);
}

const clip = synthetic(12, 48, 64);

describe("export -> readVideo round trips", () => {
  it("MP4 (H.264): exact frame count and size, PSNR > 30 dB", async () => {
    const file = tmp("clip.mp4");
    const res = await exportToVideo(clip, file, { fps: 8 });
    assert.deepEqual({ ...res, path: undefined }, { path: undefined, format: "mp4", numFrames: 12, width: 64, height: 48, fps: 8 });
    const back = await readVideo(file);
    assert.equal(back.numFrames, 12);
    assert.equal(back.width, 64);
    assert.equal(back.height, 48);
    assert.equal(back.fps, 8);
    assert.ok(back.data instanceof Uint8Array);
    const p = psnr(clip.data, back.data);
    assert.ok(p > 30, `PSNR ${p.toFixed(2)} dB`);
  });

  it("MP4 is yuv420p H.264 with the moov atom first (faststart)", async () => {
    const file = tmp("fast.mp4");
    await exportVideo(clip, file);
    const head = readFileSync(file).subarray(0, 64).toString("latin1");
    assert.ok(head.indexOf("moov") > 0 && (head.indexOf("mdat") < 0 || head.indexOf("moov") < head.indexOf("mdat")), "moov before mdat");
    const { spawnSync } = await import("node:child_process");
    const probe = spawnSync(findFfmpeg().path, ["-hide_banner", "-i", file], { encoding: "utf8" });
    assert.match(probe.stderr, /Video: h264 .*yuv420p/);
    assert.match(probe.stderr, /8 fps/);
  });

  it("WebM (VP9) round trip, and odd sizes kept", async () => {
    const file = tmp("clip.webm");
    await exportVideo(clip, file, { fps: 12 });
    const back = await readVideo(file);
    assert.deepEqual([back.numFrames, back.width, back.height, back.fps], [12, 64, 48, 12]);
    assert.ok(psnr(clip.data, back.data) > 30);
    const odd = synthetic(3, 47, 63);
    const oddFile = tmp("odd.webm");
    const res = await exportVideo(odd, oddFile);
    assert.deepEqual([res.width, res.height], [63, 47]);
    const oddBack = await readVideo(oddFile);
    assert.deepEqual([oddBack.numFrames, oddBack.width, oddBack.height], [3, 63, 47]);
  });

  it("H.264 pads an odd size by one repeated pixel (cropping it back gives the frames)", async () => {
    const odd = synthetic(4, 47, 63);
    const file = tmp("odd.mp4");
    const res = await exportToVideo(odd, file);
    assert.deepEqual([res.width, res.height], [64, 48]);
    const back = await readVideo(file);
    assert.deepEqual([back.numFrames, back.width, back.height], [4, 64, 48]);
    // Crop back to 63x47 and compare.
    const cropped = new Uint8Array(odd.data.length);
    for (let f = 0; f < 4; f++)
      for (let y = 0; y < 47; y++) {
        const src = ((f * 48 + y) * 64) * 3;
        cropped.set(back.data.subarray(src, src + 63 * 3), ((f * 47 + y) * 63) * 3);
      }
    assert.ok(psnr(odd.data, cropped) > 30);
  });

  it("H.265 in MP4 when asked", async () => {
    const file = tmp("hevc.mp4");
    await exportToVideo(clip, file, { codec: "h265", crf: 20 });
    const back = await readVideo(file);
    assert.deepEqual([back.numFrames, back.width, back.height], [12, 64, 48]);
    assert.ok(psnr(clip.data, back.data) > 30);
  });

  it("float frames export like their uint8 version", async () => {
    const float = videoToFloat(clip);
    assert.ok(float.data instanceof Float32Array);
    assert.deepEqual(videoToUint8(float).data, clip.data);
    const file = tmp("float.png");
    const pattern = join(file.slice(0, -4) + "-frames");
    await exportFrames(float, pattern);
    const back = await readVideo(pattern);
    assert.deepEqual(back.data, clip.data);
    // Out-of-range floats are clamped.
    const wild: Video = { numFrames: 1, height: 1, width: 2, data: new Float32Array([-1, 0.5, 2, NaN, 1, 0]) };
    assert.deepEqual([...videoToUint8(wild).data], [0, 128, 255, 0, 255, 0]);
  });

  it("GIF: frame count and per-frame delay read back with sharp", async () => {
    const file = tmp("clip.gif");
    await exportToGif(clip, file, { fps: 10 });
    const meta = await sharp(file, { animated: true }).metadata();
    assert.equal(meta.pages, 12);
    assert.equal(meta.pageHeight, 48);
    assert.equal(meta.width, 64);
    assert.deepEqual(meta.delay, new Array(12).fill(100));
    assert.equal(meta.loop, 0);
    const back = await readVideo(file);
    assert.deepEqual([back.numFrames, back.width, back.height, back.fps], [12, 64, 48, 10]);
    assert.ok(psnr(clip.data, back.data) > 25, "GIF palette quantisation stays close");
  });

  it("WebP: frame count and per-frame delay read back with sharp, and read back as frames", async () => {
    const file = tmp("clip.webp");
    await exportVideo(clip, file, { fps: 8 });
    const meta = await sharp(file, { animated: true }).metadata();
    assert.equal(meta.pages, 12);
    assert.deepEqual(meta.delay, new Array(12).fill(125));
    assert.equal(meta.loop, 0);
    const back = await readVideo(file);
    assert.deepEqual([back.numFrames, back.width, back.height, back.fps], [12, 64, 48, 8]);
    assert.ok(psnr(clip.data, back.data) > 30);
    const lossless = tmp("lossless.webp");
    await exportToWebp(clip, lossless, { lossless: true });
    assert.deepEqual((await readVideo(lossless)).data, clip.data);
  });

  it("PNG frames are bit-exact, numbered frame_0000.png ...", async () => {
    const dir = tmp("frames");
    const res = await exportVideo(clip, `${dir}/`);
    assert.equal(res.format, "png");
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, Array.from({ length: 12 }, (_, i) => `frame_${String(i).padStart(4, "0")}.png`));
    const back = await readVideo(dir);
    assert.deepEqual(back.data, clip.data);
    assertNoTemp(root);
  });

  it("a .png path with %d names the frames; without, <name>_0000.png", async () => {
    const dir = tmp("pat");
    mkdirSync(dir);
    await exportVideo(synthetic(3, 8, 8), join(dir, "img%03d.png"));
    await exportVideo(synthetic(2, 8, 8), join(dir, "shot.png"));
    assert.deepEqual(readdirSync(dir).sort(), ["img000.png", "img001.png", "img002.png", "shot_0000.png", "shot_0001.png"]);
  });
});

describe("readVideo options", () => {
  const file = tmp("src.mp4");
  const ready = exportToVideo(clip, file, { fps: 8 });

  it("fps resampling halves and doubles the frame count", async () => {
    await ready;
    const half = await readVideo(file, { fps: 4 });
    assert.deepEqual([half.numFrames, half.fps], [6, 4]);
    const double = await readVideo(file, { fps: 16 });
    assert.deepEqual([double.numFrames, double.fps], [24, 16]);
  });

  it("maxFrames, resize modes and one-sided sizes", async () => {
    await ready;
    const v = await readVideo(file, { maxFrames: 5, width: 32, height: 32, resize: "cover" });
    assert.deepEqual([v.numFrames, v.width, v.height, v.data.length], [5, 32, 32, 5 * 32 * 32 * 3]);
    const c = await readVideo(file, { maxFrames: 1, width: 32, height: 32, resize: "contain" });
    // 64x48 into 32x32: 32x24 plus black bars at the top and bottom.
    assert.deepEqual([...c.data.subarray(0, 3)], [0, 0, 0]);
    const w = await readVideo(file, { maxFrames: 2, width: 32 });
    assert.deepEqual([w.width, w.height], [32, 24]);
  });

  it("a folder or glob of images is read in natural order", async () => {
    const dir = tmp("seq");
    mkdirSync(dir);
    for (const i of [1, 2, 10]) {
      await sharp({ create: { width: 8, height: 4, channels: 3, background: { r: i * 10, g: 0, b: 0 } } }).png().toFile(join(dir, `f${i}.png`));
    }
    writeFileSync(join(dir, "notes.txt"), "not a frame");
    const v = await readVideo(dir);
    assert.deepEqual([v.numFrames, v.width, v.height, v.fps], [3, 8, 4, 8]);
    assert.deepEqual([v.data[0], v.data[8 * 4 * 3], v.data[2 * 8 * 4 * 3]], [10, 20, 100]);
    const g = await readVideo(join(dir, "f1*.png"), { fps: 12 });
    assert.deepEqual([g.numFrames, g.data[0], g.data[8 * 4 * 3], g.fps], [2, 10, 100, 12]);
  });

  it("images of different sizes need width/height", async () => {
    const dir = tmp("mixed");
    mkdirSync(dir);
    await sharp({ create: { width: 8, height: 8, channels: 3, background: "red" } }).png().toFile(join(dir, "a.png"));
    await sharp({ create: { width: 16, height: 8, channels: 3, background: "blue" } }).png().toFile(join(dir, "b.png"));
    await assert.rejects(readVideo(dir), /b\.png.*16x8.*8x8.*width\/height/);
    const v = await readVideo(dir, { width: 8, height: 8 });
    assert.equal(v.numFrames, 2);
  });

  it("resizeVideo keeps float videos float", async () => {
    const r = await resizeVideo(videoToFloat(synthetic(2, 16, 16)), 8, 4);
    assert.ok(r.data instanceof Float32Array);
    assert.deepEqual([r.numFrames, r.width, r.height, r.data.length], [2, 8, 4, 2 * 8 * 4 * 3]);
  });
});

describe("errors a person can act on", () => {
  it("an unsupported extension lists the supported ones", async () => {
    await assert.rejects(exportVideo(clip, tmp("x.avi")), (err: Error & { code?: string }) => {
      assert.equal(err.code, "ERR_TORCHVID_VIDEO");
      assert.match(err.message, /unsupported extension "\.avi"; supported: \.mp4, \.webm, \.gif, \.webp, \.png/);
      return true;
    });
    assert.throws(() => outputTarget("a.mov"), /unsupported extension/);
  });

  it("an undecodable or missing input says which and why", async () => {
    const bad = tmp("bad.mp4");
    writeFileSync(bad, "this is not a video");
    await assert.rejects(readVideo(bad), (err: Error & { code?: string }) => {
      assert.equal(err.code, "ERR_TORCHVID_VIDEO");
      assert.match(err.message, /^Cannot decode video .*bad\.mp4: .*Invalid data/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    await assert.rejects(readVideo(tmp("missing.mp4")), /^TorchvidError: Input video .*missing\.mp4 not found$|Input video .* not found/);
    const audio = tmp("audio.m4a");
    const { spawnSync } = await import("node:child_process");
    spawnSync(findFfmpeg().path, ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:d=0.2", "-y", audio]);
    await assert.rejects(readVideo(audio), /Cannot decode video .*audio\.m4a: it has no video stream$/);
    const badPng = tmp("bad.png");
    writeFileSync(badPng, "nope");
    await assert.rejects(readVideo(badPng), /Cannot decode image/);
  });

  it("an unwritable path fails before encoding and leaves nothing", async () => {
    await assert.rejects(exportVideo(clip, join(root, "no-such-folder", "out.mp4")), /Cannot write .*out\.mp4: folder .*no-such-folder does not exist/);
    const file = tmp("a-file");
    writeFileSync(file, "x");
    await assert.rejects(exportVideo(clip, join(file, "out.gif")), /Cannot write .*out\.gif: .*is not a folder/);
    const dir = tmp("is-a-dir.mp4");
    mkdirSync(dir);
    await assert.rejects(exportToVideo(clip, dir), /it is an existing folder/);
    assertNoTemp(root);
  });

  it("an abort mid-encode removes the temp file and writes nothing", async () => {
    // GIF / WebP encode in one sharp call: they check the signal before and after it (below).
    for (const ext of ["mp4", "webm", "png"]) {
      const controller = new AbortController();
      const out = tmp(`aborted.${ext}`);
      const target = ext === "png" ? out.replace(/\.png$/, "") : out;
      await assert.rejects(
        exportVideo(clip, target, { signal: controller.signal, onProgress: ({ frame }) => frame === 2 && controller.abort() }),
        (err: Error & { code?: string }) => err.code === "ERR_TORCHVID_ABORTED",
      );
      assert.equal(existsSync(target), false, `${target} must not exist`);
    }
    const pre = new AbortController();
    pre.abort();
    const out = tmp("pre.gif");
    await assert.rejects(exportVideo(clip, out, { signal: pre.signal }), { code: "ERR_TORCHVID_ABORTED" });
    assert.equal(existsSync(out), false);
    assertNoTemp(root);
  });

  it("reading: an empty folder, an aborted decode", async () => {
    const empty = tmp("empty");
    mkdirSync(empty);
    await assert.rejects(readVideo(empty), /Cannot read .*empty: no images \(\.png \.jpg/);
    await assert.rejects(readVideo(join(empty, "*.png")), /no images/);
    const src = tmp("to-abort.mp4");
    await exportToVideo(clip, src);
    const controller = new AbortController();
    const pending = readVideo(src, { signal: controller.signal });
    controller.abort();
    await assert.rejects(pending, { code: "ERR_TORCHVID_ABORTED" });
  });

  it("a malformed video object is a TypeError / RangeError naming the field", async () => {
    await assert.rejects(exportVideo({ numFrames: 2, height: 4, width: 4, data: new Uint8Array(10) }, tmp("x.mp4")), /Expected video\.data of length 96/);
    await assert.rejects(exportVideo({ numFrames: 0, height: 4, width: 4, data: new Uint8Array(0) } as Video, tmp("x.mp4")), /Expected a positive integer for video\.numFrames but received 0 of type number/);
    await assert.rejects(exportToVideo(clip, tmp("x.mp4"), { codec: "vp9" }), /Expected "h264" or "h265" for a \.mp4 file for codec/);
  });

  it("TORCHVID_FFMPEG pointing nowhere is an error, not a silent fallback", async () => {
    const saved = process.env.TORCHVID_FFMPEG;
    process.env.TORCHVID_FFMPEG = join(root, "no-ffmpeg");
    try {
      assert.throws(() => findFfmpeg(), /TORCHVID_FFMPEG is set to .*no-ffmpeg, which is not an executable file/);
    } finally {
      if (saved === undefined) delete process.env.TORCHVID_FFMPEG;
      else process.env.TORCHVID_FFMPEG = saved;
    }
  });
});
