// 1,000 generate() calls on the tiny model leave live memory flat. (Native handles, forwards and
// 1.5 MiB outputs: tests/native-leak.test.ts.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { it } from "node:test";

const model = fileURLToPath(new URL("../models/tiny", import.meta.url));

it("1,000 generate() calls on the tiny model: RSS flat (least-squares slope reported)", (t) => {
  const probe = fileURLToPath(new URL("./native/leak-generate-probe.ts", import.meta.url));
  const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", probe, model, "1000"], { encoding: "utf8", timeout: 600_000 });
  const r = JSON.parse(out.trim().split("\n").pop()!) as { calls: number; seconds: number; slopeKiBPerCall: number; samples: [number, number][] };
  const growth = r.samples.at(-1)![1] - r.samples[0]![1];
  const report = `${r.calls} calls in ${r.seconds.toFixed(1)} s: RSS slope ${r.slopeKiBPerCall.toFixed(2)} KiB/call, ${growth.toFixed(1)} MiB from call ${r.samples[0]![0]} to ${r.calls}; RSS MiB by call: ${r.samples.map(([c, m]) => `${c}:${m}`).join(" ")}`;
  t.diagnostic(report);
  console.log(report);
  assert.equal(r.calls, 1000);
  // One leaked text embedding ([2, 77, 32] float32, ~19 KiB) or output frame per call would be a
  // slope of 3-19 KiB/call (3-19 MiB over the run); RSS sampled after GC moves by well under that.
  assert.ok(r.slopeKiBPerCall < 2, report);
  assert.ok(growth < 4, report);
});
