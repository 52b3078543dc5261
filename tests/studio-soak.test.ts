/**
 * Soak: 50 tiny jobs (1 step, 2 frames, 32x32) through one `torchvid serve` process, submitted in
 * overlapping bursts with cancels mixed in. No job is lost (each ends done or cancelled, as
 * asked), every done job has a playable mp4, and the server's RSS stays flat: the slope of RSS
 * over the second half of the jobs is printed and must stay under 1 MiB per job.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readVideo } from "../lib/video/index.ts";
import { buildWeb, json, serveCli, tempDir, tinyModel, waitFinal, type Served } from "./helpers/studio.ts";

const JOBS = 50;
const BURST = 5;
const root = tempDir("torchvid-studio-soak-");
const out = join(root, "out");
let served: Served;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

describe("studio soak", { skip: process.platform === "linux" ? false : "reads RSS from /proc" }, () => {
  before(async () => {
    buildWeb();
    served = await serveCli(["--out", out, "--model", tinyModel]);
  });
  after(async () => {
    await served?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it(`${JOBS} jobs with overlapping submissions and cancels: none lost, done ones playable, RSS flat`, async () => {
    const { origin } = served;
    const pid = served.child.pid!;
    const wanted = new Map<string, "done" | "cancelled">();
    const samples: { jobs: number; rss: number }[] = [];
    for (let burst = 0; burst < JOBS / BURST; burst++) {
      // A burst of simultaneous submissions; one of each burst is cancelled right away.
      const replies = await Promise.all(
        Array.from({ length: BURST }, (_, i) => json(origin, "POST", "/api/generate", { prompt: `soak ${burst}-${i}`, numFrames: 2, numInferenceSteps: 1, width: 32, height: 32, seed: burst * BURST + i })),
      );
      const ids = replies.map((r) => {
        assert.equal(r.status, 202, JSON.stringify(r.body));
        return r.body.id as string;
      });
      const victim = ids[(burst % (BURST - 1)) + 1];
      const cancel = await json(origin, "DELETE", `/api/jobs/${victim}`);
      // It may have started already (202) or still wait (200); either way it must end cancelled,
      // unless it finished before the cancel arrived (409).
      assert.ok([200, 202, 409].includes(cancel.status), `cancel: ${cancel.status}`);
      for (const id of ids) wanted.set(id, id === victim && cancel.status !== 409 ? "cancelled" : "done");
      // Let the previous burst drain while this one waits: submissions overlap running jobs.
      if (burst % 2 === 1) {
        await Promise.all(ids.map((id) => waitFinal(origin, id, 120000)));
        samples.push({ jobs: (burst + 1) * BURST, rss: rssMiB(pid) });
      }
    }
    const finals = await Promise.all([...wanted.keys()].map((id) => waitFinal(origin, id, 120000)));
    samples.push({ jobs: JOBS, rss: rssMiB(pid) });

    // No job lost: the server lists every one, in the state it should be in.
    const listed = new Map<string, any>((await json(origin, "GET", "/api/jobs")).body.jobs.map((j: any) => [j.id, j]));
    assert.equal(listed.size, JOBS);
    for (const job of finals) {
      assert.equal(job.state, wanted.get(job.id), `${job.id}: ${job.state} ${job.error ?? ""}`);
      assert.equal(listed.get(job.id)?.state, job.state);
    }
    // Every done job has a playable file.
    const done = finals.filter((j) => j.state === "done");
    assert.ok(done.length >= JOBS - JOBS / BURST);
    for (const job of done) {
      const video = await readVideo(join(out, `${job.id}.mp4`));
      assert.deepEqual([video.width, video.height, video.numFrames], [32, 32, 2]);
    }
    // RSS: slope over the second half (the first jobs warm up allocator pools and caches).
    const late = samples.filter((s) => s.jobs >= JOBS / 2);
    const perJob = slope(late.map((s) => s.jobs), late.map((s) => s.rss));
    console.log(`# studio soak: RSS ${samples.map((s) => `${s.jobs}:${s.rss.toFixed(0)}`).join(" ")} MiB; slope over jobs ${late[0].jobs}-${JOBS}: ${perJob.toFixed(3)} MiB/job`);
    assert.ok(perJob < 1, `RSS grows ${perJob.toFixed(2)} MiB per job`);
  });
});
