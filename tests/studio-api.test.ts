/**
 * The studio's HTTP contract on the real pipeline and the tiny model (README "Studio"): every
 * 400 path, 404/409/415/429, traversal attempts, overlapping submissions, SSE order, cancel,
 * a failed job next to good ones, upscale, downloads, and a restart that keeps the gallery.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { readVideo } from "../lib/video/index.ts";
import { startStudio, type RunningStudio } from "../lib/studio/index.ts";
import { buildWeb, json, raw, readEvents, tempDir, tinyModel, waitFinal } from "./helpers/studio.ts";

const tiny = { numFrames: 2, numInferenceSteps: 2, width: 32, height: 32 };
const root = tempDir("torchvid-studio-api-");
const out = join(root, "out");
let server: RunningStudio;
let origin: string;

before(async () => {
  buildWeb();
  server = await startStudio({ outDir: out, model: tinyModel, port: 0, maxQueue: 6, warn: () => {} });
  origin = server.origin;
});
after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("studio API: bad input is 400 {error} naming the field", () => {
  const cases: [string, unknown, RegExp][] = [
    ["missing prompt", { numFrames: 2 }, /prompt is missing/],
    ["empty prompt", { prompt: "  " }, /prompt is empty/],
    ["prompt not a string", { prompt: 5 }, /prompt/],
    ["unknown field, with a hint", { prompt: "a", num_frames: 2 }, /Unknown field "num_frames": did you mean "numFrames"/],
    ["numFrames 0", { prompt: "a", numFrames: 0 }, /numFrames/],
    ["numFrames not an integer", { prompt: "a", numFrames: 1.5 }, /numFrames/],
    ["numFrames as a string", { prompt: "a", numFrames: "8" }, /numFrames/],
    ["numFrames over the studio limit", { prompt: "a", numFrames: 100000 }, /numFrames/],
    ["width not a multiple of 8", { prompt: "a", width: 33 }, /width must be a multiple of 8 but received 33: try 32 or 40/],
    ["height 0", { prompt: "a", height: 0 }, /height/],
    ["numInferenceSteps 0", { prompt: "a", numInferenceSteps: 0 }, /numInferenceSteps/],
    ["guidanceScale negative", { prompt: "a", guidanceScale: -1 }, /guidanceScale/],
    ["seed negative", { prompt: "a", seed: -1 }, /seed/],
    ["seed beyond 2^53", { prompt: "a", seed: 2 ** 60 }, /seed/],
    ["unknown scheduler", { prompt: "a", scheduler: "turbo" }, /"ddim".* for scheduler but received "turbo"/],
    ["fps 0", { prompt: "a", fps: 0 }, /fps/],
    ["negativePrompt not a string", { prompt: "a", negativePrompt: 3 }, /negativePrompt/],
    ["model empty", { prompt: "a", model: "" }, /model is empty/],
    ["several videos per job", { prompt: "a", numVideosPerPrompt: 2 }, /numVideosPerPrompt must be 1/],
    ["body is an array", [{ prompt: "a" }], /request/],
    ["body is a string", "a corgi", /request/],
  ];
  for (const [name, body, message] of cases) {
    it(`generate: ${name}`, async () => {
      const r = await json(origin, "POST", "/api/generate", body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error, message);
    });
  }

  it("malformed JSON, an empty body and a body that is not JSON", async () => {
    for (const body of ['{"prompt": "a"', "{prompt: 'a'}", "nul"]) {
      const r = await raw(origin, "POST", "/api/generate", { headers: { "content-type": "application/json" }, body });
      assert.equal(r.status, 400, body);
      assert.match(JSON.parse(r.body).error, /not valid JSON/);
    }
    const empty = await raw(origin, "POST", "/api/generate", { headers: { "content-type": "application/json" }, body: "" });
    assert.equal(empty.status, 400);
    assert.match(JSON.parse(empty.body).error, /body is empty/);
    // A text body (what a cross-site form could send) is a string, not a request object.
    const text = await raw(origin, "POST", "/api/generate", { headers: { "content-type": "text/plain" }, body: '{"prompt": "a"}' });
    assert.equal(text.status, 400);
    assert.match(JSON.parse(text.body).error, /for request/);
    const form = await raw(origin, "POST", "/api/generate", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "prompt=a" });
    assert.equal(form.status, 415);
    assert.match(JSON.parse(form.body).error, /Content-Type: application\/json/);
  });

  it("upscale: missing, unknown or escaping video; strength 0; numFrames", async () => {
    const cases: [unknown, RegExp][] = [
      [{ prompt: "a" }, /video/],
      [{ video: "nope1234567890" }, /video "nope1234567890" is neither a job id nor a file/],
      [{ video: "../secret.mp4" }, /video "\.\.\/secret\.mp4" is neither/],
      [{ video: "/etc/passwd" }, /video "\/etc\/passwd" is neither/],
      [{ video: "x.mp4", strength: 0 }, /strength/],
      [{ video: "x.mp4", numFrames: 4 }, /numFrames cannot be set for an upscale/],
      [{ video: "x.mp4", width: 12 }, /width/],
    ];
    for (const [body, message] of cases) {
      const r = await json(origin, "POST", "/api/upscale", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error, message);
    }
  });

  it("nothing was queued by any of them", async () => {
    const { body } = await json(origin, "GET", "/api/jobs");
    assert.deepEqual(body.jobs, []);
  });
});

describe("studio API: jobs", () => {
  it("404 for an unknown job or route, 409 to cancel a finished job", async () => {
    assert.equal((await json(origin, "GET", "/api/jobs/zzzzzzzzzzzz")).status, 404);
    assert.equal((await json(origin, "GET", "/api/jobs/NOT_AN_ID")).status, 404);
    assert.equal((await json(origin, "DELETE", "/api/jobs/zzzzzzzzzzzz")).status, 404);
    assert.equal((await json(origin, "GET", "/api/nothing")).status, 404);
    const { body } = await json(origin, "POST", "/api/generate", { prompt: "done already", ...tiny, seed: 1 });
    await waitFinal(origin, body.id);
    const r = await json(origin, "DELETE", `/api/jobs/${body.id}`);
    assert.equal(r.status, 409);
    assert.match(r.body.error, /already done/);
  });

  it("overlapping submissions run one at a time, in order, each with its own result", async () => {
    const bodies = [11, 12, 11, 13].map((seed) => ({ prompt: "a corgi on the beach", ...tiny, seed }));
    const replies = await Promise.all(bodies.map((b) => json(origin, "POST", "/api/generate", b)));
    for (const r of replies) assert.equal(r.status, 202);
    const ids = replies.map((r) => r.body.id as string);
    assert.equal(new Set(ids).size, 4);
    const jobs = await Promise.all(ids.map((id) => waitFinal(origin, id)));
    for (const job of jobs) {
      assert.equal(job.state, "done", job.error);
      assert.equal(job.video, `/files/${job.id}.mp4`);
      assert.deepEqual([job.result.width, job.result.height, job.result.numFrames], [32, 32, 2]);
    }
    // One device, one job at a time: each started after the one before it finished.
    const byStart = [...jobs].sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    for (let i = 1; i < byStart.length; i++) assert.ok(byStart[i].startedAt >= byStart[i - 1].finishedAt, "jobs overlapped on the device");
    // Same seed -> same frames; another seed -> other frames (no state leaks between jobs).
    const frames = await Promise.all(jobs.map((j) => readVideo(join(out, `${j.id}.mp4`))));
    assert.deepEqual(frames[0].data, frames[2].data);
    assert.notDeepEqual(frames[0].data, frames[1].data);
    assert.notDeepEqual(frames[1].data, frames[3].data);
  });

  it("SSE: the queued state, positions counting down, running, every step in order, previews, the final state last", async () => {
    const first = await json(origin, "POST", "/api/generate", { prompt: "ahead", ...tiny, numInferenceSteps: 6, seed: 2 });
    await json(origin, "POST", "/api/generate", { prompt: "ahead too", ...tiny, seed: 4 });
    const second = await json(origin, "POST", "/api/generate", { prompt: "watched", numFrames: 3, numInferenceSteps: 5, width: 32, height: 32, seed: 3 });
    const events = await readEvents(origin, second.body.id);
    const names = events.map((e) => e.event);
    assert.equal(names[0], "state");
    assert.equal(events[0].data.state, "queued");
    assert.equal(events[0].data.position, 2);
    const positions = events.filter((e) => e.event === "position").map((e) => e.data.position);
    assert.deepEqual(positions, [1, 0]); // behind the running job (0) and one waiting (1)
    const states = events.filter((e) => e.event === "state").map((e) => e.data.state);
    assert.deepEqual(states, ["queued", "running", "done"]);
    assert.equal(names.at(-1), "state");
    const steps = events.filter((e) => e.event === "step").map((e) => e.data);
    assert.deepEqual(steps.map((s) => s.step), [1, 2, 3, 4, 5]);
    for (const s of steps) {
      assert.equal(s.numSteps, 5);
      assert.ok(s.secondsPerStep > 0 && s.etaSeconds >= 0);
    }
    assert.equal(steps.at(-1).etaSeconds, 0);
    // Steps come only between the running and the final state.
    const runningAt = events.findIndex((e) => e.event === "state" && e.data.state === "running");
    assert.ok(names.indexOf("step") > runningAt && names.lastIndexOf("step") < names.length - 1);
    const previews = events.filter((e) => e.event === "preview").map((e) => e.data);
    assert.ok(previews.length >= 1);
    for (const p of previews) {
      assert.deepEqual([p.frames, p.width, p.height], [3, 16, 16]); // 3 frames of 32/2 latent pixels
      const png = Buffer.from(p.image.replace(/^data:image\/png;base64,/, ""), "base64");
      const meta = await sharp(png).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ["png", 48, 16]);
    }
    await waitFinal(origin, first.body.id);
    assert.equal(server.studio.events.size, 0, "closed streams left subscribers behind");
  });

  it("cancel: a queued job at once (200), the running one at its next step (202); the queue goes on", async () => {
    const long = await json(origin, "POST", "/api/generate", { prompt: "long", numFrames: 2, numInferenceSteps: 400, width: 32, height: 32 });
    const queued = await json(origin, "POST", "/api/generate", { prompt: "queued", ...tiny });
    const after = await json(origin, "POST", "/api/generate", { prompt: "after", ...tiny });
    const eventsDone = readEvents(origin, long.body.id);
    // Wait until the long one really runs.
    for (let i = 0; i < 400; i++) {
      const { body } = await json(origin, "GET", `/api/jobs/${long.body.id}`);
      if (body.step > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const c1 = await json(origin, "DELETE", `/api/jobs/${queued.body.id}`);
    assert.equal(c1.status, 200);
    assert.equal(c1.body.state, "cancelled");
    const c2 = await json(origin, "DELETE", `/api/jobs/${long.body.id}`);
    assert.equal(c2.status, 202);
    const final = await waitFinal(origin, long.body.id);
    assert.equal(final.state, "cancelled");
    assert.ok(final.step < 400, "it ran to the end");
    assert.equal(final.video, null);
    assert.equal(existsSync(join(out, `${long.body.id}.mp4`)), false);
    const events = await eventsDone;
    assert.equal(events.at(-1)!.data.state, "cancelled");
    assert.equal((await waitFinal(origin, after.body.id)).state, "done");
    assert.equal((await json(origin, "GET", `/api/jobs/${queued.body.id}`)).body.state, "cancelled");
  });

  it("a client that leaves an event stream early leaves no subscriber behind", async () => {
    const long = await json(origin, "POST", "/api/generate", { prompt: "watched briefly", numFrames: 2, numInferenceSteps: 400, width: 32, height: 32 });
    const controller = new AbortController();
    const res = await fetch(`${origin}/api/jobs/${long.body.id}/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("event: step")) text += new TextDecoder().decode((await reader.read()).value);
    assert.equal(server.studio.events.size, 1);
    controller.abort();
    for (let i = 0; i < 100 && server.studio.events.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.studio.events.size, 0);
    await json(origin, "DELETE", `/api/jobs/${long.body.id}`);
    assert.equal((await waitFinal(origin, long.body.id)).state, "cancelled");
  });

  it("a job that fails (bad model) shows its error; the next one runs", async () => {
    const bad = await json(origin, "POST", "/api/generate", { prompt: "a", ...tiny, model: join(root, "no-such-model") });
    const good = await json(origin, "POST", "/api/generate", { prompt: "b", ...tiny });
    const failed = await waitFinal(origin, bad.body.id);
    assert.equal(failed.state, "failed");
    assert.match(failed.error, /no-such-model/);
    assert.equal((await waitFinal(origin, good.body.id)).state, "done");
  });

  it("429 when the queue is full, 202 again once it drains", async () => {
    const ids: string[] = [];
    let refused: { status: number; body: any } | undefined;
    for (let i = 0; i < 10 && !refused; i++) {
      const r = await json(origin, "POST", "/api/generate", { prompt: `fill ${i}`, numFrames: 2, numInferenceSteps: 300, width: 32, height: 32 });
      if (r.status === 429) refused = r;
      else ids.push(r.body.id);
    }
    assert.ok(refused, "never refused");
    assert.equal(ids.length, 6);
    assert.match(refused.body.error, /queue is full \(6 jobs/);
    for (const id of ids.reverse()) await json(origin, "DELETE", `/api/jobs/${id}`);
    for (const id of ids) assert.equal((await waitFinal(origin, id)).state, "cancelled");
    assert.equal((await json(origin, "POST", "/api/generate", { prompt: "after the flood", ...tiny })).status, 202);
  });

  it("upscale a job (its prompt by default) and a file in --out, to a new size", async () => {
    const src = await json(origin, "POST", "/api/generate", { prompt: "a lighthouse", numFrames: 3, numInferenceSteps: 2, width: 32, height: 32 });
    await waitFinal(origin, src.body.id);
    const up = await json(origin, "POST", "/api/upscale", { video: src.body.id, width: 48, height: 40, strength: 0.5, numInferenceSteps: 4 });
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const job = await waitFinal(origin, up.body.id);
    assert.equal(job.state, "done", job.error);
    assert.equal(job.kind, "upscale");
    assert.equal(job.settings.prompt, "a lighthouse");
    assert.deepEqual(job.source, { file: `${src.body.id}.mp4`, job: src.body.id });
    assert.equal(job.numSteps, 2, "strength 0.5 of 4 steps runs 2");
    const video = await readVideo(join(out, `${job.id}.mp4`));
    assert.deepEqual([video.width, video.height, video.numFrames], [48, 40, 3]);
    const byFile = await json(origin, "POST", "/api/upscale", { video: `${src.body.id}.mp4`, prompt: "by file", strength: 0.5, numInferenceSteps: 2 });
    assert.equal((await waitFinal(origin, byFile.body.id)).state, "done");
  });

  it("downloads: mp4, and webm / gif made on request, as attachments on ?download", async () => {
    const { body } = await json(origin, "GET", "/api/jobs");
    const done = body.jobs.find((j: any) => j.state === "done" && j.kind === "generate");
    for (const [ext, type] of [["mp4", "video/mp4"], ["webm", "video/webm"], ["gif", "image/gif"]]) {
      const res = await fetch(`${origin}/files/${done.id}.${ext}?download=1`);
      assert.equal(res.status, 200, ext);
      assert.equal(res.headers.get("content-type"), type);
      assert.match(res.headers.get("content-disposition") ?? "", new RegExp(`attachment; filename="${done.id}\\.${ext}"`));
      await res.arrayBuffer();
      const decoded = await readVideo(join(out, `${done.id}.${ext}`));
      assert.deepEqual([decoded.width, decoded.height, decoded.numFrames], [done.result.width, done.result.height, done.result.numFrames]);
    }
    // A <video> seeks with ranges.
    const part = await fetch(`${origin}/files/${done.id}.mp4`, { headers: { range: "bytes=0-9" } });
    assert.equal(part.status, 206);
    assert.equal((await part.arrayBuffer()).byteLength, 10);
  });

  it("nothing outside --out and the page's assets: traversal, encoded or not, is 400/404", async () => {
    writeFileSync(join(root, "secret.txt"), "TOP-SECRET");
    const attempts = [
      "/files/../secret.txt",
      "/files/..%2fsecret.txt",
      "/files/..%2Fsecret.txt",
      "/files/%2e%2e%2fsecret.txt",
      "/files/%252e%252e%252fsecret.txt",
      "/files/..%5csecret.txt",
      "/files/..\\secret.txt",
      "/files/%2Fetc%2Fpasswd",
      "/files/.hidden",
      "/files/%00.mp4",
      "/files/%E0%A4%A",
      "/../secret.txt",
      "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/..%2f..%2fpackage.json",
      "/package.json",
      "/lib/studio/server.ts",
      "/web/public/index.html",
      "/src/app.ts",
      "/api/jobs/..%2f..%2fsecret.txt",
      "/api/jobs/%2e%2e",
    ];
    for (const path of attempts) {
      const r = await raw(origin, "GET", path);
      assert.ok(r.status === 400 || r.status === 404, `${path}: HTTP ${r.status}`);
      assert.ok(!r.body.includes("TOP-SECRET") && !r.body.includes("root:") && !r.body.includes('"name": "torchvid"'), path);
      assert.ok(JSON.parse(r.body).error, `${path} answered without {error}`);
    }
    // The page itself is there.
    assert.equal((await raw(origin, "GET", "/")).status, 200);
    assert.equal((await raw(origin, "GET", "/app.js")).status, 200);
    assert.equal((await raw(origin, "GET", "/style.css")).status, 200);
  });

  it("a restart keeps the gallery (settings from the JSON beside each video) and re-queues waiting jobs", async () => {
    const waiting = await json(origin, "POST", "/api/generate", { prompt: "left waiting", ...tiny, numInferenceSteps: 300 });
    const behind = await json(origin, "POST", "/api/generate", { prompt: "behind it", ...tiny, seed: 77 });
    const before = (await json(origin, "GET", "/api/jobs")).body.jobs.filter((j: any) => j.state === "done");
    await server.close();
    const saved = JSON.parse(readFileSync(join(out, `${behind.body.id}.json`), "utf8"));
    assert.equal(saved.state, "queued");
    assert.equal(saved.settings.seed, 77);
    server = await startStudio({ outDir: out, model: tinyModel, port: 0, maxQueue: 6, warn: () => {} });
    origin = server.origin;
    const again = (await json(origin, "GET", "/api/jobs")).body.jobs;
    for (const job of before) {
      const same = again.find((j: any) => j.id === job.id);
      assert.ok(same, `${job.id} lost`);
      assert.deepEqual(same.settings, job.settings);
      assert.equal(same.video, job.video);
    }
    await json(origin, "DELETE", `/api/jobs/${waiting.body.id}`);
    const resumed = await waitFinal(origin, behind.body.id);
    assert.equal(resumed.state, "done");
    assert.ok(readdirSync(out).includes(`${behind.body.id}.mp4`));
  });
});
