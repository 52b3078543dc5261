// The README's library example runs as written (with the package import pointed at the source
// tree and the model folder at this checkout's models/tiny).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

const repo = fileURLToPath(new URL("..", import.meta.url));
const model = join(repo, "models", "tiny");

function exampleBlock(): string {
  const text = readFileSync(join(repo, "README.md"), "utf8");
  const at = text.indexOf("<!-- example:");
  assert.ok(at >= 0, "README has an example marker");
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block, "a ts block follows the marker");
  return block[1];
}

it("the README library example runs and writes its video", { skip: existsSync(join(model, "manifest.json")) ? false : "models/tiny missing: run `npm run setup`", timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchvid-readme-"));
  const source = exampleBlock()
    .replace(/from "torchvid"/g, `from ${JSON.stringify(join(repo, "lib", "index.ts"))}`)
    .replace(/"models\/tiny"/g, JSON.stringify(model));
  const file = join(dir, "example.mts");
  writeFileSync(file, source);
  const out = execFileSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], { cwd: dir, encoding: "utf8" });
  assert.match(out, /step 10\/10/);
  assert.match(out, /^8 32 32$/m, "video-to-video result size");
  assert.ok(existsSync(join(dir, "spiderman.mp4")));
});

it("the package root exports the fixed public names (import from \"torchvid\", as built by setup)", { skip: existsSync(join(repo, "dist", "index.js")) ? false : "dist/ missing: run `npm run setup` (or npm run build:ts)" }, () => {
  const names = ["TextToVideoSDPipeline", "VideoToVideoSDPipeline", "DDIMScheduler", "DPMSolverMultistepScheduler", "LCMScheduler", "CLIPTokenizer", "Tensor", "Generator", "exportVideo", "readVideo", "info"];
  const code = `import * as m from "torchvid"; console.log(JSON.stringify(${JSON.stringify(names)}.filter((n) => typeof m[n] !== "function")));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: repo, encoding: "utf8" });
  assert.deepEqual(JSON.parse(out), [], "missing exports");
});
