// A model folder that is missing, truncated, corrupt, from the future, or written by a newer
// torch: each is one clear error naming the file and the fix.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ModelFolder, ModelFormatError, TextToVideoSDPipeline, TorchvidError } from "../lib/index.ts";
import { referenceModel } from "./helpers/reference-model.ts";

function copyModel(): string {
  const dir = join(mkdtempSync(join(tmpdir(), "torchvid-folder-")), "model");
  cpSync(referenceModel(), dir, { recursive: true });
  return dir;
}

function editManifest(dir: string, edit: (m: Record<string, any>) => void): void {
  const file = join(dir, "manifest.json");
  const manifest = JSON.parse(readFileSync(file, "utf8"));
  edit(manifest);
  writeFileSync(file, JSON.stringify(manifest));
}

const rejects = (dir: string, pattern: RegExp) =>
  assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu" }), (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });

describe("model folder problems", () => {
  it("missing manifest", async () => {
    const dir = copyModel();
    rmSync(join(dir, "manifest.json"));
    await rejects(dir, /Model manifest .*manifest\.json is missing: run `torchvid convert/);
  });
  it("manifest that is not JSON, or not ours", async () => {
    const dir = copyModel();
    writeFileSync(join(dir, "manifest.json"), "{ nope");
    await rejects(dir, /is not valid JSON/);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "something-else" }));
    await rejects(dir, /is not a torchvid model manifest/);
  });
  it("a newer folder format", async () => {
    const dir = copyModel();
    editManifest(dir, (m) => (m.formatVersion = 99));
    await rejects(dir, /format version 99, newer than this torchvid reads \(1\): upgrade torchvid/);
  });
  it("a missing or truncated model file", async () => {
    const dir = copyModel();
    truncateSync(join(dir, "unet.pt"), 1000);
    await rejects(dir, /unet\.pt has 1000 bytes but the manifest says \d+: the file is truncated/);
    const other = copyModel();
    rmSync(join(other, "vae_decoder.pt"));
    await rejects(other, /vae_decoder\.pt is missing: run `torchvid convert/);
  });
  it("a corrupt file of the right size: sha256 check, and the load error otherwise", async () => {
    const dir = copyModel();
    const file = join(dir, "unet.pt");
    const bytes = readFileSync(file);
    bytes.fill(7, 100, bytes.length - 100);
    writeFileSync(file, bytes);
    assert.equal(statSync(file).size, bytes.length);
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu", verifyChecksums: true }), (e: Error) => {
      assert.ok(e instanceof ModelFormatError);
      assert.match(e.message, /unet\.pt is corrupt \(sha256 .* differs from the manifest\)/);
      return true;
    });
    await assert.rejects(TextToVideoSDPipeline.fromPretrained(dir, { device: "cpu" }), (e: TorchvidError) => {
      assert.equal(e.code, "ERR_TORCHVID_MODEL_LOAD");
      assert.match(e.message, /unet\.pt/);
      return true;
    });
  });
  it("a folder written by a newer torch gets the torch-version explanation", async () => {
    const dir = copyModel();
    editManifest(dir, (m) => (m.torchVersion = "9.1.0"));
    const file = join(dir, "text_encoder.pt");
    const bytes = readFileSync(file);
    bytes.fill(0, 200, bytes.length - 200);
    writeFileSync(file, bytes);
    await rejects(dir, /written by torch 9\.1\.0, newer than the libtorch 1\.13\.\d+ torchvid runs on: convert it with a torch <= 1\.13/);
  });
  it("a good folder opens and reports its parts", async () => {
    const folder = await ModelFolder.open(referenceModel());
    await folder.verifyChecksums();
    assert.equal(folder.manifest.format, "torchvid-model");
    assert.equal(folder.unetConfig.sample_size, 8);
    assert.equal(folder.vaeConfig.scaling_factor, 0.18215);
  });
});
