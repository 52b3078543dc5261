/**
 * One UNet forward, torchvid against Python torch on the same unet.pt and the same inputs
 * (bench/python/unet_forward.py). Usage:
 *   npx tsx bench/unet-forward.ts MODEL_DIR [--frames 16] [--size 16] [--n 5] [--warmup 1] [--rounds 2]
 * Runs the sides interleaved (torchvid, python default, python tuned allocator, ...) for `rounds`
 * rounds, because the machine is shared: interleaving spreads other load over all sides. Each
 * torchvid round is a fresh process, like each Python one. Prints one JSON line per measurement.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { quantile } from "./stats.ts";

const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

const TUNED = { MALLOC_ARENA_MAX: "1", MALLOC_TRIM_THRESHOLD_: "4000000000", MALLOC_MMAP_THRESHOLD_: "4000000000", MALLOC_TOP_PAD_: "1000000000" };

async function child(model: string, frames: number, size: number, n: number, warmup: number): Promise<void> {
  const { Tensor, TorchModule } = await import("../lib/index.ts");
  const { setNumThreads, info } = await import("../lib/runtime.ts");
  // TORCHVID_BENCH_THREADS: intra-op threads for this run (default: torchvid's own default).
  if (process.env.TORCHVID_BENCH_THREADS) setNumThreads(Number(process.env.TORCHVID_BENCH_THREADS));
  const cfg = JSON.parse(readFileSync(join(model, "configs", "unet.json"), "utf8"));
  const sample = Tensor.randn([2, cfg.in_channels, frames, size, size], { seed: 0 });
  const unet = await TorchModule.load(join(model, "unet.pt"));
  // Python draws sample then context from one generator; do the same for equal inputs.
  const { Generator } = await import("../lib/tensor.ts");
  const g = new Generator(0);
  const s2 = Tensor.randn([2, cfg.in_channels, frames, size, size], { generator: g });
  const context = Tensor.randn([2, 77, cfg.cross_attention_dim], { generator: g });
  sample.dispose();
  const t = Tensor.from(new Float32Array([500]), []);
  for (let i = 0; i < warmup; i++) ((await unet.forward(s2, t, context)) as InstanceType<typeof Tensor>).dispose();
  const times: number[] = [];
  let out: InstanceType<typeof Tensor> | undefined;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    out?.dispose();
    const t0 = performance.now();
    out = (await unet.forward(s2, t, context)) as InstanceType<typeof Tensor>;
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const meanAbs = (out!.abs().sum().dataSync()[0] as number) / out!.numel;
  console.log(JSON.stringify({ side: "torchvid", threads: info().numThreads, ms: times.map((x) => Math.round(x * 10) / 10), median_ms: Math.round(median(times) * 10) / 10, user_ms_per_forward: Math.round(cpu.user / 1000 / n), sys_ms_per_forward: Math.round(cpu.system / 1000 / n), out_mean_abs: meanAbs }));
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    frames: { type: "string", default: "16" },
    size: { type: "string", default: "16" },
    n: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    rounds: { type: "string", default: "2" },
    child: { type: "boolean", default: false },
    sides: { type: "string", default: "torchvid,python,python-tuned" },
  },
});
const model = positionals[0];
if (!model) throw new Error("usage: npx tsx bench/unet-forward.ts MODEL_DIR [--frames F] [--size S] [--n N]");
const [frames, size, n, warmup] = [values.frames, values.size, values.n, values.warmup].map(Number) as [number, number, number, number];
if (values.child) {
  await child(model, frames, size, n, warmup);
} else {
  const here = fileURLToPath(import.meta.url);
  const sides = values.sides!.split(",");
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const side of sides) {
      // "torchvid", "python", "python-tuned" (the malloc variables), or NAME:VAR=V;VAR=V for extra environment.
      const [name, extra = ""] = side.split(":");
      const extraEnv = Object.fromEntries(extra.split(";").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
      const env = { ...process.env, ...(name!.endsWith("-tuned") ? TUNED : {}), ...extraEnv };
      const cmd = name!.startsWith("torchvid")
        ? [process.execPath, ["--import", "tsx", here, model, "--child", ...["--frames", `${frames}`, "--size", `${size}`, "--n", `${n}`, "--warmup", `${warmup}`]]]
        : ["/usr/bin/python3", [join(here, "..", "python", "unet_forward.py"), model, `${frames}`, `${size}`, `${n}`, `${warmup}`]];
      const res = spawnSync(cmd[0] as string, cmd[1] as string[], { env, encoding: "utf8" });
      const line = res.stdout.trim().split("\n").pop() ?? "";
      const time = spawnSync("date", ["-u", "+%H:%M:%S"], { encoding: "utf8" }).stdout.trim();
      console.log(JSON.stringify({ round: r, at: time, ...(line.startsWith("{") ? JSON.parse(line) : { error: res.stderr.slice(-400) }), side }));
    }
  }
}
