/** The JSON request checker shared by the studio, the job queue and `--prompts` batch files. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkGenerateRequest, checkUpscaleRequest, requestToOptions } from "../lib/requests.ts";

test("a good request keeps its fields and drops nothing", () => {
  const body = { prompt: "a corgi", negativePrompt: "blurry", numFrames: 8, numInferenceSteps: 20, width: 256, height: 128, guidanceScale: 7.5, eta: 0.5, seed: 42, scheduler: "dpm++", fps: 12, model: "models/tiny", numVideosPerPrompt: 2 };
  assert.deepEqual(checkGenerateRequest(body), body);
  assert.deepEqual(requestToOptions(checkGenerateRequest(body)), { prompt: "a corgi", negativePrompt: "blurry", numFrames: 8, numInferenceSteps: 20, width: 256, height: 128, guidanceScale: 7.5, eta: 0.5, seed: 42, numVideosPerPrompt: 2 });
});

test("null fields mean 'use the default'", () => {
  assert.deepEqual(checkGenerateRequest({ prompt: "x", seed: null, width: null }), { prompt: "x" });
});

const refused: [unknown, RegExp][] = [
  [null, /Expected a JSON object .* for request but received null/],
  [[], /for request but received an array/],
  [{}, /prompt is missing/],
  [{ prompt: "  " }, /prompt is empty/],
  [{ prompt: 3 }, /Expected a string for prompt but received 3/],
  [{ prompt: "x", num_frames: 8 }, /Unknown field "num_frames": did you mean "numFrames"\?/],
  [{ prompt: "x", colour: 1 }, /Unknown field "colour"; known fields: prompt, /],
  [{ prompt: "x", numFrames: 0 }, /Expected an integer between 1 and 1024 for numFrames but received 0/],
  [{ prompt: "x", numFrames: "8" }, /Expected an integer for numFrames but received "8"/],
  [{ prompt: "x", numInferenceSteps: 5000 }, /between 1 and 1000 for numInferenceSteps but received 5000/],
  [{ prompt: "x", width: 100 }, /width must be a multiple of 8 but received 100: try 96 or 104/],
  [{ prompt: "x", height: 4 }, /between 8 and 4096 for height but received 4/],
  [{ prompt: "x", guidanceScale: 1e9 }, /guidanceScale/],
  [{ prompt: "x", seed: -1 }, /seed/],
  [{ prompt: "x", seed: 1.5 }, /Expected an integer for seed/],
  [{ prompt: "x", scheduler: "dpm" }, /Expected one of "ddim", "dpm\+\+", .* for scheduler but received "dpm"/],
  [{ prompt: "x", fps: 0 }, /fps/],
  [{ prompt: "x", model: "" }, /model is empty/],
];
for (const [body, message] of refused) {
  test(`refused with the field named: ${JSON.stringify(body)}`, () => {
    assert.throws(() => checkGenerateRequest(body), message);
  });
}

test("limits can be tightened by a server", () => {
  assert.throws(() => checkGenerateRequest({ prompt: "x", numFrames: 64 }, { maxFrames: 32 }), /between 1 and 32 for numFrames/);
  assert.throws(() => checkGenerateRequest({ prompt: "x".repeat(11) }, { maxPromptLength: 10 }), /prompt is 11 characters long; the limit is 10/);
});

test("upscale requests: video is required, strength in (0, 1]", () => {
  assert.deepEqual(checkUpscaleRequest({ video: "job-1", strength: 0.6, width: 64, height: 64 }), { video: "job-1", strength: 0.6, width: 64, height: 64 });
  assert.throws(() => checkUpscaleRequest({ strength: 0.5 }), /for video but received undefined/);
  assert.throws(() => checkUpscaleRequest({ video: "a.mp4", strength: 0 }), /strength in \(0, 1\] but received 0/);
  assert.throws(() => checkUpscaleRequest({ video: "a.mp4", strength: 1.5 }), /<= 1 for strength/);
  assert.deepEqual(requestToOptions(checkUpscaleRequest({ video: "a.mp4", prompt: "p", strength: 0.3, fps: 8 })), { prompt: "p", strength: 0.3 });
  assert.throws(() => checkUpscaleRequest({ video: "a.mp4", numFrames: 4 }), /^TypeError: numFrames cannot be set for an upscale: the input video sets it; leave numFrames out$/);
});
