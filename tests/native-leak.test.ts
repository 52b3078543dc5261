// Handles and forwards must not leak: live memory after many cycles stays within stated bounds.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { nativeFixtures } from "./helpers/native-fixtures.ts";

it("10,000 create/dispose cycles, 2,000 GC-freed handles and 400 forwards with 1.5 MiB outputs do not grow live memory", () => {
  const probe = fileURLToPath(new URL("./native/leak-probe.ts", import.meta.url));
  const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", probe, nativeFixtures().dir], {
    encoding: "utf8",
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: "32768" },
  });
  const grown = JSON.parse(out.trim().split("\n").pop()!) as Record<string, number>;
  assert.ok(grown.outputMiB >= 1, `outputs of ${grown.outputMiB} MiB`);
  // A leaked handle per cycle would be 1.25 GiB, 2 GiB and 600 MiB respectively.
  assert.ok(grown.createDispose < 16, `RSS grew by ${grown.createDispose.toFixed(1)} MiB over 10,000 create/dispose cycles`);
  assert.ok(grown.finalizers < 400, `RSS grew by ${grown.finalizers.toFixed(1)} MiB with 2,000 unreferenced 1 MiB handles`);
  assert.ok(grown.forwards < 16, `RSS grew by ${grown.forwards.toFixed(1)} MiB over 400 forwards of 1.5 MiB outputs`);
});
