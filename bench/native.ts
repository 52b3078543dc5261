/**
 * Per-call overhead of the native layer (issue 3, Benchmark): µs per call, median of many samples
 * with p10 / p90, of
 *   - a small tensor-op round trip: Tensor.from (16 floats) + axpby + dataSync,
 *   - a bare axpby on [16] (pure call overhead) and on [2, 4, 16, 32, 32] (a latent-sized scheduler op),
 *   - an async forward of a tiny TorchScript module (a scripted nn.Linear(4, 4)),
 * and, side by side, the same work in Python torch on the same machine with the same thread count
 * (bench/python/native_overhead.py).
 *
 *   npx tsx bench/native.ts [--threads N] [--quick] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Tensor } from "../lib/tensor.ts";
import { TorchModule } from "../lib/module.ts";
import { info, setNumThreads } from "../lib/runtime.ts";
import { pythonWithTorch, runPythonJson, sig, timeCalls, timeSyncCalls, type Summary } from "./stats.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

export interface NativeBenchOptions {
  /** Intra-op threads for both torchvid and Python torch. Defaults to the machine's cores. */
  threads?: number;
  /** Fewer samples (about 10 s in all instead of about 40 s). */
  quick?: boolean;
  /** Skip the Python baseline. */
  noPython?: boolean;
}

export interface NativeBenchRow {
  bench: "native";
  op: string;
  torchvid_us: number;
  torchvid_p10: number;
  torchvid_p90: number;
  python_us?: number;
  python_p10?: number;
  python_p90?: number;
  /** torchvid median / Python median (< 1: torchvid is faster). */
  ratio?: number;
  threads: number;
}

export async function runNativeBench(options: NativeBenchOptions = {}): Promise<NativeBenchRow[]> {
  const threads = options.threads ?? availableParallelism();
  setNumThreads(threads);
  const samples = options.quick ? 50 : 200;
  const maxMs = options.quick ? 1500 : 5000;
  const dir = mkdtempSync(join(tmpdir(), "torchvid-bench-"));
  const python = options.noPython ? null : pythonWithTorch();
  try {
    const modulePath = join(dir, "linear4.pt");
    const { execFileSync } = await import("node:child_process");
    execFileSync(python ?? pythonWithTorch() ?? "python3", [join(here, "python", "make_tiny_module.py"), modulePath], { stdio: "inherit" });

    const ours: Record<string, Summary> = {};
    const host = Float32Array.from({ length: 16 }, (_, i) => i);
    ours["roundtrip from+axpby+dataSync [16]"] = timeSyncCalls(() => {
      const x = Tensor.from(host, [16]);
      const y = x.axpby(0.5, 2, x);
      const out = y.dataSync();
      x.dispose();
      y.dispose();
      return out;
    }, { samples, maxMs });
    const small = Tensor.from(host, [16]);
    ours["axpby [16]"] = timeSyncCalls(() => small.axpby(0.5, 2, small).dispose(), { samples, maxMs });
    const bigX = Tensor.randn([2, 4, 16, 32, 32], { seed: 1 });
    const bigY = Tensor.randn([2, 4, 16, 32, 32], { seed: 2 });
    ours["axpby [2,4,16,32,32]"] = timeSyncCalls(() => bigX.axpby(0.5, 2, bigY).dispose(), { batch: 20, warmup: 200, samples, maxMs });
    const module = await TorchModule.load(modulePath);
    const input = Tensor.randn([1, 4], { seed: 3 });
    ours["forward Linear(4,4) TorchScript"] = await timeCalls(async () => (await module.forwardTensor(input)).dispose(), { samples, maxMs });
    small.dispose();
    bigX.dispose();
    bigY.dispose();
    input.dispose();
    module.dispose();

    let theirs: Record<string, Summary> = {};
    if (python) {
      const res = runPythonJson<{ rows: Record<string, Summary>; threads: number }>(python, [join(here, "python", "native_overhead.py"), modulePath, String(threads), ...(options.quick ? ["--quick"] : [])]);
      theirs = res.rows;
    }
    return Object.entries(ours).map(([op, s]) => {
      const p = theirs[op];
      const row: NativeBenchRow = { bench: "native", op, torchvid_us: sig(s.median), torchvid_p10: sig(s.p10), torchvid_p90: sig(s.p90), threads };
      if (p) Object.assign(row, { python_us: sig(p.median), python_p10: sig(p.p10), python_p90: sig(p.p90), ratio: sig(s.median / p.median) });
      return row;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const threadsAt = args.indexOf("--threads");
  const rows = await runNativeBench({ threads: threadsAt >= 0 ? Number(args[threadsAt + 1]) : undefined, quick: args.includes("--quick") });
  if (args.includes("--json")) console.log(JSON.stringify({ info: info(), rows }));
  else {
    const { formatTable } = await import("../lib/cli/bench.ts");
    console.log(formatTable(rows as never));
  }
}
