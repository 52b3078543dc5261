/**
 * `torchvid serve` as a user starts it: the printed URL, 127.0.0.1 by default, another host only
 * with --token, and then 401 on every API call (and result file) without `Authorization: Bearer`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildWeb, json, raw, readEvents, repo, serveCli, tempDir, tinyModel, waitFinal, type Served } from "./helpers/studio.ts";

const root = tempDir("torchvid-studio-cli-");
const TOKEN = "s3cret-token-for-tests";

before(() => buildWeb());
after(() => rmSync(root, { recursive: true, force: true }));

describe("torchvid serve", () => {
  it("refuses another host without --token, a short token and a bad model, as usage errors (exit 2)", () => {
    const run = (args: string[]) => spawnSync(process.execPath, [join(repo, "bin", "torchvid.js"), "serve", ...args], { cwd: root, encoding: "utf8" });
    const open = run(["--host", "0.0.0.0", "--port", "0"]);
    assert.equal(open.status, 2);
    assert.match(open.stderr, /--host 0\.0\.0\.0 would open the studio to other machines: add --token/);
    const short = run(["--host", "0.0.0.0", "--token", "abc", "--port", "0"]);
    assert.equal(short.status, 2);
    assert.match(short.stderr, /--token must be at least 8 characters/);
    const model = run(["--model", join(root, "nothing"), "--port", "0"]);
    assert.equal(model.status, 2);
    assert.match(model.stderr, /is not a torchvid model folder \(no manifest\.json\)/);
    const help = run(["--help"]);
    assert.equal(help.status, 0);
    for (const flag of ["--port", "--host", "--model", "--out", "--device", "--token"]) assert.match(help.stdout, new RegExp(flag));
  });

  it("binds 127.0.0.1 by default and prints its URL when ready; Ctrl-C stops it cleanly", async () => {
    const served = await serveCli(["--out", join(root, "local")]);
    try {
      assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.equal((await json(served.origin, "GET", "/api/jobs")).status, 200);
      // A second server on the same --out, or on the same port, is refused (exit 2).
      const run = (args: string[]) => spawnSync(process.execPath, [join(repo, "bin", "torchvid.js"), "serve", ...args], { cwd: root, encoding: "utf8" });
      const sameOut = run(["--port", "0", "--out", join(root, "local")]);
      assert.equal(sameOut.status, 2, sameOut.stderr);
      assert.match(sameOut.stderr, /Another torchvid serve is using --out/);
      const samePort = run(["--port", new URL(served.origin).port, "--out", join(root, "other")]);
      assert.equal(samePort.status, 2, samePort.stderr);
      assert.match(samePort.stderr, /Port \d+ on 127\.0\.0\.1 is in use: pass another --port/);
    } finally {
      assert.equal(await served.stop(), 0);
    }
  });

  describe("with --host 0.0.0.0 --token", () => {
    let served: Served;
    let origin: string;
    const auth = { authorization: `Bearer ${TOKEN}` };
    before(async () => {
      served = await serveCli(["--host", "0.0.0.0", "--token", TOKEN, "--out", join(root, "shared"), "--model", tinyModel]);
      origin = served.origin.replace("0.0.0.0", "127.0.0.1");
    });
    after(async () => {
      await served?.stop();
    });

    it("prints the URL with the token for the page", () => {
      assert.match(served.url, new RegExp(`^http://0\\.0\\.0\\.0:\\d+/\\?token=${TOKEN}$`));
    });

    it("401 on every API call without the right bearer token", async () => {
      const calls: [string, string, string?][] = [
        ["GET", "/api/jobs"],
        ["GET", "/api/config"],
        ["GET", "/api/jobs/abcdefgh1234"],
        ["GET", "/api/jobs/abcdefgh1234/events"],
        ["DELETE", "/api/jobs/abcdefgh1234"],
        ["POST", "/api/generate", '{"prompt":"a"}'],
        ["POST", "/api/upscale", '{"video":"x.mp4"}'],
        ["POST", "/api/generate", "{not json"],
        ["GET", "/api/nothing-here"],
      ];
      const wrong: Record<string, string>[] = [{}, { authorization: "Bearer wrong-token-123" }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }, { cookie: `torchvid_token=${TOKEN}` }];
      for (const headers of wrong) {
        for (const [method, path, body] of calls) {
          const r = await raw(origin, method, path, { headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, ...(body ? { body } : {}) });
          assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
          assert.match(JSON.parse(r.body).error, /Authorization: Bearer <token>/);
          assert.equal(r.headers["www-authenticate"], 'Bearer realm="torchvid"');
        }
      }
      // Result files too (the page's cookie works for them); the page's own assets are public.
      assert.equal((await raw(origin, "GET", "/files/abcdefgh1234.mp4")).status, 401);
      assert.equal((await raw(origin, "GET", "/files/abcdefgh1234.mp4", { headers: { cookie: `torchvid_token=${TOKEN}` } })).status, 404);
      assert.equal((await raw(origin, "GET", "/")).status, 200);
      assert.equal((await raw(origin, "GET", "/app.js")).status, 200);
    });

    it("the right token works end to end (submit, events, result file)", async () => {
      const submitted = await json(origin, "POST", "/api/generate", { prompt: "with a token", numFrames: 2, numInferenceSteps: 2, width: 32, height: 32 }, auth);
      assert.equal(submitted.status, 202);
      const events = await readEvents(origin, submitted.body.id, auth);
      assert.equal(events.at(-1)!.data.state, "done");
      const job = await waitFinal(origin, submitted.body.id, 30000, auth);
      assert.equal((await raw(origin, "GET", job.video)).status, 401);
      assert.equal((await raw(origin, "GET", job.video, { headers: auth })).status, 200);
    });
  });
});
