// The bad-input suite: every input a 226-case corpus found slipping through (accepted when it
// should be refused, or refused with a message that did not name the problem) gets the message
// it must show. Converter cases: tests/convert/test_cli_messages.py. Nothing here allocates
// real memory: the out-of-memory cases ask for allocations that fail at once.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DDIMScheduler, Tensor, TextToVideoSDPipeline, type TorchvidError } from "../lib/index.ts";
import { referenceModel } from "./helpers/reference-model.ts";
import { runNode } from "./helpers/run-node.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = mkdtempSync(join(tmpdir(), "torchvid-bad-input-"));
after(() => {
  chmodAllWritable(root);
  rmSync(root, { recursive: true, force: true });
});

function chmodAllWritable(dir: string): void {
  try {
    chmodSync(dir, 0o755);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) chmodAllWritable(join(dir, e.name));
      else if (!e.isSymbolicLink()) chmodSync(join(dir, e.name), 0o644);
    }
  } catch {}
}

let model: string;
let pipe: TextToVideoSDPipeline;
const small = { prompt: "a cat", numFrames: 2, height: 16, width: 16, numInferenceSteps: 2, seed: 1 } as const;

before(async () => {
  model = referenceModel();
  pipe = await TextToVideoSDPipeline.fromPretrained(model, { device: "cpu" });
});

/** A copy of the reference model folder: JSON files copied (editable), the rest linked. */
function modelCopy(name: string, edit: (dir: string) => void = () => {}): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const e of readdirSync(model, { withFileTypes: true })) {
    const from = join(model, e.name);
    if (e.isDirectory()) {
      mkdirSync(join(dir, e.name));
      for (const f of readdirSync(from)) copyFileSync(join(from, f), join(dir, e.name, f));
    } else if (e.name.endsWith(".json")) copyFileSync(from, join(dir, e.name));
    else symlinkSync(from, join(dir, e.name));
  }
  edit(dir);
  return dir;
}

function editJson(path: string, change: (json: Record<string, any>) => void): void {
  const json = JSON.parse(readFileSync(path, "utf8"));
  change(json);
  writeFileSync(path, JSON.stringify(json, null, 2));
}

describe("numbers that are not finite are refused everywhere, naming the option", () => {
  it("guidanceScale: Infinity (was: all-NaN frames)", async () => {
    await assert.rejects(pipe.generate({ ...small, guidanceScale: Infinity }), { name: "RangeError", message: "Expected a finite number for guidanceScale but received Infinity" });
    await assert.rejects(pipe.generate({ ...small, guidanceScale: -Infinity }), { name: "RangeError", message: /finite number for guidanceScale/ });
  });
  it("eta: Infinity (was: 'Expected a number for b/a but received NaN')", async () => {
    await assert.rejects(pipe.generate({ ...small, eta: Infinity }), { name: "RangeError", message: "Expected a finite number for eta but received Infinity" });
  });
  it("strength, LoRA scale, scheduler config values", async () => {
    const { VideoToVideoSDPipeline } = await import("../lib/index.ts");
    const v2v = VideoToVideoSDPipeline.fromPipe(pipe);
    const video = { numFrames: 2, height: 16, width: 16, data: new Uint8Array(2 * 16 * 16 * 3) };
    const { numFrames: _n, ...v2vOptions } = small;
    await assert.rejects(v2v.generate({ ...v2vOptions, video, strength: Infinity }), /finite number for strength|strength in \(0, 1\]/);
    await assert.rejects(pipe.loadLoraWeights(join(root, "x.safetensors"), { scale: Infinity }), { name: "RangeError", message: /finite number for scale/ });
    assert.throws(() => DDIMScheduler.fromConfig({ beta_end: Infinity }), { name: "RangeError", message: /finite number for DDIMScheduler config beta_end/ });
    assert.throws(() => Tensor.zeros([2]).mul(Infinity), /finite number/);
  });
  it("DDIM beta_start: -1 (was: NaN message about b/a)", () => {
    assert.throws(() => DDIMScheduler.fromConfig({ beta_start: -1 }), {
      name: "RangeError",
      message: "Expected a number between 0 and 1 for DDIMScheduler config beta_start but received -1",
    });
  });
});

describe("model inputs of the wrong shape name the tensor, the expected shape and the file", () => {
  it("promptEmbeds of the wrong width (was: raw TorchScript traceback)", async () => {
    const embeds = Tensor.zeros([1, 77, 16]);
    try {
      await assert.rejects(pipe.generate({ ...small, prompt: undefined, promptEmbeds: embeds }), (e: Error) => {
        assert.equal(e.name, "RangeError");
        assert.match(e.message, /^promptEmbeds has shape \[1, 77, 16\] but this model's UNet \(.*unet\.pt\) takes \[B, 77, 32\] \(cross_attention_dim in configs\/unet\.json\)/);
        assert.match(e.message, /make the embeddings with this model's text encoder/);
        assert.doesNotMatch(e.message, /Traceback|TorchScript/);
        return true;
      });
      await assert.rejects(pipe.generate({ ...small, negativePromptEmbeds: Tensor.zeros([77, 32]) }), /^RangeError: negativePromptEmbeds has shape \[77, 32\]/);
    } finally {
      embeds.dispose();
    }
  });
  it("a forward that torch refuses says which model, which file, which shapes", async () => {
    const sample = Tensor.zeros([1, 3, 1, 4, 4]);
    const ehs = Tensor.zeros([1, 77, 32]);
    try {
      await assert.rejects(pipe.unet.forward(sample, 10, ehs), (e: TorchvidError) => {
        assert.match(e.message, /^The UNet \(.*unet\.pt\) failed on sample \[1, 3, 1, 4, 4\], encoder_hidden_states \[1, 77, 32\]: RuntimeError: /);
        assert.match(e.message, /It takes sample \[B, 4, frames, height\/8, width\/8\] and encoder_hidden_states \[B, 77, 32\]/);
        assert.equal(e.message.split("\n").length, 1, "one line: the TorchScript traceback stays in cause");
        return true;
      });
    } finally {
      sample.dispose();
      ehs.dispose();
    }
  });
  it("out of memory in the UNet (8192x8192-class latents) names the model, the shapes and the memory options", async () => {
    // 512x512 latents: the first spatial attention asks for [4, 262144, 262144] floats (about 1 TB),
    // which the allocator refuses at once.
    const sample = Tensor.zeros([1, 4, 1, 512, 512]);
    const ehs = Tensor.zeros([1, 77, 32]);
    try {
      await assert.rejects(pipe.unet.forward(sample, 10, ehs), (e: TorchvidError) => {
        assert.equal(e.code, "ERR_TORCHVID_OOM");
        assert.match(e.message, /^The UNet \(.*unet\.pt\) ran out of memory on sample \[1, 4, 1, 512, 512\], encoder_hidden_states \[1, 77, 32\]: /);
        assert.match(e.message, /To fit it: pipe\.enableModelCpuOffload\(\), pipe\.enableVaeSlicing\(\), pipe\.unet\.enableForwardChunking\(\), fewer frames or a smaller size$/);
        return true;
      });
    } finally {
      sample.dispose();
      ehs.dispose();
    }
    // ... and the pipeline is still usable.
    assert.equal((await pipe.generate(small)).frames.length, 1);
  });
});

describe("model folders that are not what they claim", () => {
  it("a VAE config whose block_out_channels disagrees with the weights (was: 32x32 frames for 64x64)", async () => {
    const dir = modelCopy("vae-blocks", (d) => editJson(join(d, "configs", "vae.json"), (c) => (c.block_out_channels = [16, 32, 32])));
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu" }), (e: Error) => {
      assert.equal(e.name, "ModelFormatError");
      assert.match(e.message, /configs\/vae\.json says block_out_channels .* \[16,32,32\] but .*vae_decoder\.pt has "2 blocks \(2x upscaling\)": the config and the weights come from different models; convert the model again/);
      return true;
    });
  });
  it('sample_size: "abc" names the config file and key (was: blames a height never passed)', async () => {
    const dir = modelCopy("sample-size", (d) => editJson(join(d, "configs", "unet.json"), (c) => (c.sample_size = "abc")));
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu" }), {
      name: "ModelFormatError",
      message: /configs\/unet\.json: sample_size must be a positive integer but is "abc": the file was edited or damaged; fix the value or convert the model again/,
    });
  });
  it("swapped model files (was: raw TorchScript traceback at the first step)", async () => {
    const dir = modelCopy("swapped", (d) =>
      editJson(join(d, "manifest.json"), (m) => {
        [m.components.unet, m.components.vae_decoder] = [m.components.vae_decoder, m.components.unet];
      }),
    );
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu" }), (e: Error) => {
      assert.equal(e.name, "ModelFormatError");
      assert.match(e.message, /Model file .*(vae_decoder|unet)\.pt is listed as the (unet|vae_decoder) in manifest\.json but holds the (vae_decoder|unet): the model files were swapped or renamed; convert the model again/);
      return true;
    });
  });

  // As root, mode 000 does not stop reading: run the check as an unprivileged user.
  const asUser = process.getuid?.() === 0 ? 65534 : process.getuid?.();
  function openAs(dir: string): { message?: string; skip?: string } {
    const script = join(root, "open-folder.mjs");
    writeFileSync(script, `const m = await import(${JSON.stringify(join(repo, "lib/models/model-folder.ts"))});\ntry { await m.ModelFolder.open(process.argv[2]); console.log("OPENED"); } catch (e) { console.log("ERR " + e.message); }\n`);
    chmodSync(script, 0o644);
    const r = spawnSync(process.execPath, ["--import", "tsx", script, dir], { cwd: repo, uid: asUser, gid: asUser === 65534 ? 65534 : undefined, encoding: "utf8", env: { ...process.env, HOME: tmpdir() }, timeout: 60_000 });
    const line = r.stdout.split("\n").find((l) => l.startsWith("ERR ") || l === "OPENED");
    if (!line) return { skip: `cannot run node as uid ${asUser} here: ${r.stderr.split("\n")[0]}` };
    return { message: line.slice(4) };
  }
  for (const what of ["model folder", "manifest"] as const) {
    it(`a ${what} with mode 000 says "permission denied", not "missing"`, (t) => {
      const dir = modelCopy(`mode000-${what.replace(" ", "-")}`);
      chmodSync(root, 0o755);
      chmodSync(dir, 0o755);
      chmodSync(what === "manifest" ? join(dir, "manifest.json") : dir, 0o000);
      const r = openAs(dir);
      if (r.skip) return t.skip(r.skip);
      assert.match(r.message!, /^Model manifest .*manifest\.json cannot be read: permission denied\. Make the model folder readable \(chmod -R a\+rX <model folder>\) or run as a user who can read it$/);
      chmodSync(what === "manifest" ? join(dir, "manifest.json") : dir, 0o755);
    });
  }
});

// ---- the command line ------------------------------------------------------------------------

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function torchvid(args: string[]): Promise<CliResult> {
  return runNode([join(repo, "bin", "torchvid.js"), ...args], { cwd: root });
}

function assertUsage(r: CliResult, message: string): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderr, `torchvid: ${message}\nRun \`torchvid generate --help\` for usage.\n`);
}

describe("command-line values that slipped through", () => {
  it("--frames with no value (was: 16 frames, exit 0) and -o with no value (was: exit 1)", async () => {
    assertUsage(await torchvid(["generate", "a cat", "--model", model, "--frames"]), "--frames needs a value (e.g. --frames 16); nothing was run");
    assertUsage(await torchvid(["generate", "a cat", "--model", model, "-o"]), "-o needs a value (e.g. -o out.mp4); nothing was run");
  });
  it("--steps 5000 is refused before the model loads, naming the model's limit (was: failed in the scheduler)", async () => {
    assertUsage(
      await torchvid(["generate", "a cat", "--model", model, "--steps", "5000"]),
      `--steps 5000 is more than the 1000 timesteps the model was trained with (num_train_timesteps in ${join(model, "scheduler", "scheduler_config.json")}): use at most 1000; 20-50 is usual`,
    );
  });
  it("a repeated --steps says it was repeated", async () => {
    assertUsage(await torchvid(["generate", "a cat", "--model", model, "--steps", "2", "--steps", "3"]), "--steps was given 2 times (2, 3): pass it once");
  });
  it("--guidance Infinity", async () => {
    assertUsage(await torchvid(["generate", "a cat", "--model", model, "--guidance", "Infinity"]), "--guidance must be a number >= 0, got Infinity");
  });
  it("out of memory names the CLI flags (was: library method names); with --json the error is on stdout AND stderr, as documented", async () => {
    // 1024x1024 with this VAE (2x) gives 512x512 latents: the UNet's first attention cannot be allocated.
    const r = await torchvid(["generate", "a cat", "--model", model, "--width", "1024", "--height", "1024", "--frames", "1", "--steps", "1", "-o", join(root, "oom.mp4"), "--json"]);
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split("\n").at(-1)!;
    assert.match(last, /^torchvid: The UNet \(.*unet\.pt\) ran out of memory on sample \[2, 4, 1, 512, 512\], encoder_hidden_states \[2, 77, 32\]: RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried to allocate \d+ bytes \(\d+\.\d GiB\)/);
    assert.match(last, /To fit it: --cpu-offload \(GPU\), --vae-slicing, --chunk-size 1, fewer --frames or a smaller --width\/--height \(--verbose for details\)$/);
    assert.doesNotMatch(last, /enableModelCpuOffload|free memory with/);
    const event = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(event.event, "error");
    assert.equal(event.code, "ERR_TORCHVID_OOM");
    assert.match(event.message, /--cpu-offload/);
    assert.equal(statSync(root).isDirectory(), true);
    assert.deepEqual(readdirSync(root).filter((n) => n.includes("oom")), [], "nothing half-written");
  });
});

// ---- video input -----------------------------------------------------------------------------

describe("video files that slipped through", () => {
  /** A 35-byte GIF whose header declares a 16000x16000 frame (6 GB once decoded as before). */
  function hugeGif(): string {
    const path = join(root, "huge.gif");
    const b = Buffer.alloc(35);
    b.write("GIF89a", 0, "latin1");
    b.writeUInt16LE(16000, 6);
    b.writeUInt16LE(16000, 8);
    b[10] = 0x80; // global colour table of 2 entries
    b.set([0, 0, 0, 0xff, 0xff, 0xff], 13);
    b[19] = 0x2c; // image descriptor
    b.writeUInt16LE(16000, 24);
    b.writeUInt16LE(16000, 26);
    b.set([0, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b], 28);
    writeFileSync(path, b);
    return path;
  }

  it("a tiny GIF declaring 16000x16000 is refused before it is decoded (maxPixels, documented default)", async () => {
    const { readVideo, DEFAULT_MAX_PIXELS } = await import("../lib/video/index.ts");
    assert.equal(DEFAULT_MAX_PIXELS, 4096 * 4096);
    const before = process.memoryUsage().rss;
    await assert.rejects(readVideo(hugeGif()), {
      code: "ERR_TORCHVID_VIDEO",
      message: /^Cannot read .*huge\.gif: its frames are 16000x16000 \(256000000 pixels\), more than the limit of 16777216 pixels \(maxPixels, default 4096x4096\); resize it first/,
    });
    assert.ok(process.memoryUsage().rss - before < 256 * 2 ** 20, "nothing near the decoded size was allocated");
  });

  it("maxPixels and maxBytes are options; the limits apply to ffmpeg and sharp inputs alike", async () => {
    const { readVideo, exportVideo } = await import("../lib/video/index.ts");
    const clip = { numFrames: 8, width: 32, height: 32, data: new Uint8Array(8 * 32 * 32 * 3).map((_, i) => i % 251) };
    const mp4 = join(root, "clip.mp4");
    await exportVideo(clip, mp4, { fps: 8 });
    await assert.rejects(readVideo(mp4, { maxPixels: 1000 }), /its frames are 32x32 \(1024 pixels\), more than the limit of 1000 pixels/);
    await assert.rejects(readVideo(mp4, { maxBytes: 4 * 32 * 32 * 3 }), /its decoded frames pass 12288 bytes \(maxBytes, default 2 GiB\): pass maxFrames \(--frames\) or a lower fps/);
    assert.equal((await readVideo(mp4, { maxBytes: 4 * 32 * 32 * 3, maxFrames: 4 })).numFrames, 4);
    const png = join(root, "frame.png");
    const sharp = (await import("sharp")).default;
    await sharp(Buffer.alloc(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(png);
    await assert.rejects(readVideo(png, { maxPixels: 4095 }), /its frames are 64x64 \(4096 pixels\), more than the limit of 4095 pixels/);
    await assert.rejects(readVideo(mp4, { maxPixels: 0 }), RangeError);
  });

  it("upscale of a truncated mp4 says it is truncated and how to recover (was: 'Conversion failed!')", async () => {
    const { exportVideo } = await import("../lib/video/index.ts");
    // (This clip cut in half makes the pinned ffmpeg fail; other cuts decode the frames before the cut, with a warning.)
    const clip = { numFrames: 8, width: 32, height: 32, data: new Uint8Array(8 * 32 * 32 * 3).map((_, i) => i % 251) };
    const whole = join(root, "whole.mp4");
    await exportVideo(clip, whole, { fps: 8 });
    const bytes = readFileSync(whole);
    const cut = join(root, "cut.mp4");
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = await torchvid(["upscale", cut, "-p", "a cat", "--model", model, "--steps", "2", "-o", join(root, "up.mp4")]);
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split("\n").at(-1)!;
    assert.match(last, /^torchvid: Cannot decode video .*cut\.mp4: the file is truncated \(it ends before its video data does: an interrupted download or copy\?\)\. Copy or download it again, or keep the frames that are there with: ffmpeg -i /);
    assert.doesNotMatch(last, /Conversion failed!/);
  });
});

// ---- concurrency -----------------------------------------------------------------------------

describe("overlapping generate() calls", () => {
  it("with DDIM, two overlapping calls on one pipeline give what each gives alone", async () => {
    const alone = [(await pipe.generate({ ...small, seed: 11 })).frames[0].data, (await pipe.generate({ ...small, seed: 12, guidanceScale: 3 })).frames[0].data];
    const [a, b] = await Promise.all([pipe.generate({ ...small, seed: 11 }), pipe.generate({ ...small, seed: 12, guidanceScale: 3 })]);
    assert.deepEqual(a.frames[0].data, alone[0]);
    assert.deepEqual(b.frames[0].data, alone[1]);
  });
  // A multistep scheduler's history (model outputs, step index) belongs to the call: before the
  // runtime issue the second call failed ("all 2 steps of the schedule were taken").
  it("with DPM-Solver++, two overlapping calls give what each gives alone", async () => {
    const { DPMSolverMultistepScheduler } = await import("../lib/index.ts");
    const p = TextToVideoSDPipeline.fromPipe(pipe);
    p.scheduler = DPMSolverMultistepScheduler.fromConfig(pipe.scheduler.config as Record<string, unknown>);
    const alone = [(await p.generate({ ...small, seed: 11 })).frames[0].data, (await p.generate({ ...small, seed: 12, guidanceScale: 3 })).frames[0].data];
    const [a, b] = await Promise.all([p.generate({ ...small, seed: 11 }), p.generate({ ...small, seed: 12, guidanceScale: 3 })]);
    assert.deepEqual(a.frames[0].data, alone[0]);
    assert.deepEqual(b.frames[0].data, alone[1]);
  });
});

describe("the VAE decoder names itself too", () => {
  it("latents it cannot take: model, file, shapes, what it takes", async () => {
    const z = Tensor.zeros([1, 3, 4, 4]);
    try {
      await assert.rejects(pipe.vae.decode(z), (e: TorchvidError) => {
        assert.match(e.message, /^The VAE decoder \(.*vae_decoder\.pt\) failed on latents \[1, 3, 4, 4\]: RuntimeError: .*It takes latents \[N, 4, height\/2, width\/2\]/);
        assert.equal(e.message.split("\n").length, 1);
        return true;
      });
    } finally {
      z.dispose();
    }
  });
});
