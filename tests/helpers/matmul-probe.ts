/**
 * Child process of tests/native-matmul.test.ts: float32 matrix products in every operand layout
 * libtorch hands to `sgemm_` (plain, transposed views, a row stride wider than the row, batched),
 * printed as JSON with the inputs so the parent can check them in float64. Runs in its own
 * process because the routing (TORCHVID_BLAS) is chosen once per process.
 */
import { native } from "../../lib/native.ts";
import { info } from "../../lib/runtime.ts";
import { Tensor } from "../../lib/tensor.ts";

// Deterministic inputs in [-1, 1): a small LCG, so the parent can rebuild them from the seed.
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export interface ProbeCase {
  name: string;
  a: { shape: number[]; seed: number; transpose?: boolean; sliceCols?: number };
  b: { shape: number[]; seed: number; transpose?: boolean };
}

// Shapes are [rows, cols] (or [batch, rows, cols]) of the stored tensor, before any transpose view.
export const cases: ProbeCase[] = [
  { name: "A @ B (5x7 @ 7x3)", a: { shape: [5, 7], seed: 1 }, b: { shape: [7, 3], seed: 2 } },
  { name: "Aᵀ @ B (view of 7x5)", a: { shape: [7, 5], seed: 3, transpose: true }, b: { shape: [7, 3], seed: 4 } },
  { name: "A @ Bᵀ (view of 3x7)", a: { shape: [5, 7], seed: 5 }, b: { shape: [3, 7], seed: 6, transpose: true } },
  { name: "Aᵀ @ Bᵀ", a: { shape: [7, 5], seed: 7, transpose: true }, b: { shape: [3, 7], seed: 8, transpose: true } },
  { name: "A[:, :33] of 65x40 @ B (row stride 40)", a: { shape: [65, 40], seed: 9, sliceCols: 33 }, b: { shape: [33, 70], seed: 10 } },
  { name: "batched 6 x (16x4 @ 4x16)", a: { shape: [6, 16, 4], seed: 11 }, b: { shape: [6, 4, 16], seed: 12 } },
  { name: "192x96 @ 96x160 (blocked kernels, both threads)", a: { shape: [192, 96], seed: 13 }, b: { shape: [96, 160], seed: 14 } },
];

function operand(spec: { shape: number[]; seed: number; transpose?: boolean; sliceCols?: number }): Tensor {
  let t = Tensor.from(values(spec.shape.reduce((x, y) => x * y, 1), spec.seed), spec.shape);
  if (spec.sliceCols !== undefined) t = t.slice(-1, 0, spec.sliceCols);
  if (spec.transpose) t = t.permute(spec.shape.length === 2 ? [1, 0] : [0, 2, 1]);
  return t;
}

if (process.argv[1]?.endsWith("matmul-probe.ts")) {
  const before = info().float32Matmul.calls;
  const results = cases.map((c) => Array.from(operand(c.a).matmul(operand(c.b)).dataSync() as Float32Array));
  const afterCases = info().float32Matmul.calls;

  // BLAS semantics with beta = 0: the output is written, never read. Fill a 64 KiB block with NaN,
  // free it into the caching allocator, and let the product's output (same size) reuse it.
  const stats = () => native().cpuAllocatorStats();
  const poison = Tensor.from(new Float32Array(128 * 128).fill(NaN), [128, 128]);
  poison.dispose();
  const hitsBefore = stats().hits;
  const product = Tensor.from(values(128 * 64, 15), [128, 64]).matmul(Tensor.from(values(64 * 128, 16), [64, 128]));
  const reusedFreedBlock = stats().hits > hitsBefore;
  const nanInProduct = (product.dataSync() as Float32Array).some(Number.isNaN);

  console.log(JSON.stringify({ backend: info().float32Matmul.backend, routedCalls: afterCases - before, results, reusedFreedBlock, nanInProduct }));
}
