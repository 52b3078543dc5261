// One OpenMP team per process (src/core.h): only the CPU executor runs ATen's loops in parallel.
// A second team (the JS thread's, after one large op there) made libgomp see more threads than
// cores and sleep at every barrier: every later UNet forward took twice as long on one core.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { nativeFixtures } from "./helpers/native-fixtures.ts";
import { runNode } from "./helpers/run-node.ts";

describe("intra-op threads", () => {
  it("large ops on the JS thread start no second OpenMP team; info() still reports the configured count", async () => {
    const probe = fileURLToPath(new URL("./native/threads-probe.ts", import.meta.url));
    const run = await runNode(["--import", "tsx", probe, nativeFixtures().dir], { env: { TORCHVID_EXECUTOR: "" } });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!) as { afterForwards: number; afterJsOps: number; afterMore: number; numThreads: number };
    assert.equal(out.afterJsOps, out.afterForwards, `the JS thread's ops started ${out.afterJsOps - out.afterForwards} more thread(s)`);
    assert.equal(out.afterMore, out.afterForwards);
    assert.ok(out.numThreads >= 1);
  });
});
