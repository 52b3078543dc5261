// Float32 matrix products routed from libtorch's sgemm_ to oneDNN (src/onednn_sgemm.h): every
// operand layout against a float64 product computed here, the routing itself (calls counted,
// TORCHVID_BLAS=system honoured), and BLAS's beta = 0 contract (NaN in reused memory stays out).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { before, describe, it } from "node:test";
import { assertAllClose } from "./helpers/assert-close.ts";
import { cases, values, type ProbeCase } from "./helpers/matmul-probe.ts";
import { runNode } from "./helpers/run-node.ts";

const probe = fileURLToPath(new URL("./helpers/matmul-probe.ts", import.meta.url));

interface ProbeOutput {
  backend: string;
  routedCalls: number;
  results: number[][];
  reusedFreedBlock: boolean;
  nanInProduct: boolean;
}

async function runProbe(env: NodeJS.ProcessEnv = {}): Promise<ProbeOutput> {
  const run = await runNode(["--import", "tsx", probe], { env });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").pop()!);
}

// The product in float64 from the stored values, reading through the case's views by hand.
function expected(c: ProbeCase): number[] {
  const read = (spec: ProbeCase["a"]) => {
    const data = values(spec.shape.reduce((x, y) => x * y, 1), spec.seed);
    const [batch, rows, cols] = spec.shape.length === 3 ? spec.shape : [1, ...spec.shape];
    const used = spec.sliceCols ?? cols;
    const at = (bi: number, r: number, col: number) => data[bi * rows * cols + r * cols + col];
    // logical [batch][i][j] after slice and transpose
    return spec.transpose
      ? { batch, n: used, m: rows, get: (bi: number, i: number, j: number) => at(bi, j, i) }
      : { batch, n: rows, m: used, get: at };
  };
  const a = read(c.a);
  const b = read(c.b);
  assert.equal(a.m, b.n, `${c.name}: inner sizes`);
  const out: number[] = [];
  for (let bi = 0; bi < a.batch; bi++)
    for (let i = 0; i < a.n; i++)
      for (let j = 0; j < b.m; j++) {
        let s = 0;
        for (let k = 0; k < a.m; k++) s += a.get(bi, i, k) * b.get(bi, k, j);
        out.push(s);
      }
  return out;
}

function checkResults(output: ProbeOutput): void {
  cases.forEach((c, i) => assertAllClose(output.results[i], expected(c), 1e-5, 2e-5, c.name));
}

describe("float32 matrix products (sgemm_ routed to oneDNN)", () => {
  let routed: ProbeOutput;
  before(async () => {
    routed = await runProbe();
  });

  it("computes every layout libtorch passes (transposed views, wider row stride, batched) like float64", () => {
    const output = routed;
    // Debian's libtorch loads oneDNN as its own library, so this machine must route.
    assert.equal(output.backend, "onednn");
    assert.ok(output.routedCalls >= cases.length, `only ${output.routedCalls} sgemm_ calls came through the addon`);
    checkResults(output);
  });

  it("writes the output without reading it when beta = 0 (NaN left in a reused block stays out)", () => {
    const output = routed;
    assert.ok(output.reusedFreedBlock, "the product's output did not reuse the freed NaN block: the test proves nothing");
    assert.equal(output.nanInProduct, false);
  });

  it("TORCHVID_BLAS=system hands every call to the system BLAS, with the same results", async () => {
    const output = await runProbe({ TORCHVID_BLAS: "system" });
    assert.equal(output.backend, "system");
    assert.ok(output.routedCalls >= cases.length);
    checkResults(output);
    assert.equal(output.nanInProduct, false);
  });
});
