/**
 * The torchvid benchmark: `torchvid bench` (lib/cli/bench.ts calls runBenchmark) and
 * `npx tsx bench/index.ts` (npm run bench) print the same rows.
 *
 * Sections (each a set of rows; `bench` names the section):
 * - native:   per-call overhead of small tensor ops and a tiny TorchScript forward vs Python torch (bench/native.ts)
 * - pipeline: per configuration, torchvid and the plain Python torch loop on the same TorchScript
 *             files: text-encode ms, UNet ms/step (median), step ms, host overhead µs/step, VAE
 *             decode ms, end-to-end s, it/s, peak GPU MiB (CUDA), UNet GFLOP per step, the FLOP
 *             floor ms (FLOPs / measured matmul rate) and UNet step / floor (bench/pipeline.ts)
 * - few-step: 4 LCM steps vs 50 DDIM steps end to end (issue 7)
 * - matmul:   the measured matmul rate used for the floor (CPU float32; CUDA bf16 and fp16)
 * - flops:    UNet FLOPs per forward of the real models' standard shapes (lib/unet-flops.ts)
 *
 * Options / flags: --model DIR (default: models/tiny, or on CUDA the models in
 * $TORCHVID_BENCH_MODELS_DIR as bench/gpu/run.sh makes them), --device cpu|cuda, --dtype,
 * --steps, --frames, --width, --height, --quick, --json, --no-python, --only native,pipeline,...
 * With $TORCHVID_BENCH_OUT set, the rows are also written to $TORCHVID_BENCH_OUT/bench.json.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TextToVideoSDPipeline } from "../lib/pipelines/index.ts";
import { defaultDevice, info, synchronize } from "../lib/runtime.ts";
import { Tensor, type Device, type DType } from "../lib/tensor.ts";
import { unetFlops } from "../lib/unet-flops.ts";
import { runNativeBench } from "./native.ts";
import { benchPipeline, type PipelineBenchResult, type PipelineTimings } from "./pipeline.ts";
import { machine, sig } from "./stats.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = resolve(here, "..");

export type BenchRow = Record<string, string | number | undefined>;

export interface BenchmarkOptions {
  /** Model folder. Defaults to models/tiny (CPU) or the folders in $TORCHVID_BENCH_MODELS_DIR (CUDA). */
  model?: string;
  /** "cpu", "cuda" or "cuda:N". Defaults to cuda when usable. */
  device?: string;
  /** Model dtype. Defaults to the pipeline's default (float32 on CPU, float16 on CUDA). */
  dtype?: string;
  /** Fewer steps / frames / samples (a smoke run). */
  quick?: boolean;
  /** Accepted for the CLI's sake; printing is the caller's job. */
  json?: boolean;
  steps?: number;
  frames?: number;
  width?: number;
  height?: number;
  /** Skip the Python baselines. */
  noPython?: boolean;
  /** Sections to run (default all): "native", "pipeline", "few-step", "matmul", "flops". */
  only?: string[];
  /** Progress lines on stderr. Defaults to true. */
  log?: boolean;
}

interface ModelRun {
  name: string;
  dir: string;
  frames: number;
  height?: number;
  width?: number;
  steps: number;
}

/** float32 (CPU) or bf16/fp16 (CUDA) matmul rate in FLOP/s: the best of a few n x n products. */
export async function matmulRate(device: Device, dtype: DType, n: number, reps: number): Promise<number> {
  let a = Tensor.randn([n, n], { seed: 1 });
  let b = Tensor.randn([n, n], { seed: 2 });
  if (device !== "cpu") {
    const [da, db] = [await a.toDevice(device), await b.toDevice(device)];
    a.dispose();
    b.dispose();
    [a, b] = [da, db];
  }
  if (dtype !== "float32") {
    const [ca, cb] = [a.to(dtype), b.to(dtype)];
    a.dispose();
    b.dispose();
    [a, b] = [ca, cb];
  }
  let best = Infinity;
  try {
    a.matmul(b).dispose(); // warm-up
    await synchronize(device);
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const outs: Tensor[] = [];
      for (let k = 0; k < 4; k++) outs.push(a.matmul(b));
      await synchronize(device);
      best = Math.min(best, (performance.now() - t0) / 4);
      for (const o of outs) o.dispose();
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  return (2 * n ** 3) / (best / 1e3);
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

/** The models and shapes to run: one given folder, or on CUDA the standard ones bench/gpu/run.sh converts. */
function modelRuns(options: BenchmarkOptions, device: Device): ModelRun[] {
  const quick = options.quick ?? false;
  const pick = (r: ModelRun): ModelRun => ({
    ...r,
    frames: options.frames ?? r.frames,
    height: options.height ?? r.height,
    width: options.width ?? r.width,
    steps: options.steps ?? r.steps,
  });
  const dirs: { name: string; dir: string }[] = [];
  if (options.model) dirs.push({ name: options.model.replace(/\/+$/, "").split("/").pop() ?? options.model, dir: options.model });
  else if (device !== "cpu" && process.env.TORCHVID_BENCH_MODELS_DIR && existsSync(process.env.TORCHVID_BENCH_MODELS_DIR)) {
    const base = process.env.TORCHVID_BENCH_MODELS_DIR;
    for (const d of readdirSync(base).sort()) if (existsSync(join(base, d, "manifest.json"))) dirs.push({ name: d, dir: join(base, d) });
  } else dirs.push({ name: "tiny", dir: join(root, "models", "tiny") });
  return dirs.map(({ name, dir }) => {
    const unet = readJson(join(dir, "configs", "unet.json"));
    const big = Number(unet.sample_size ?? 32) >= 32 && ((unet.block_out_channels as number[]) ?? [])[0] >= 320;
    if (!big) return pick({ name, dir, frames: quick ? 4 : 8, steps: quick ? 4 : 10 });
    if (/zeroscope|576w/i.test(name)) return pick({ name, dir, frames: 24, height: 320, width: 576, steps: quick ? 10 : 50 });
    return pick({ name, dir, frames: 16, height: 256, width: 256, steps: quick ? 10 : 50 });
  });
}

function timingRow(run: ModelRun, res: PipelineBenchResult, impl: string, t: PipelineTimings, rate: number | null, dtype: string): BenchRow {
  const floorMs = rate ? (res.unetFlops / rate) * 1e3 : undefined;
  return {
    bench: "pipeline",
    model: run.name,
    shape: `${res.config.frames}x${res.config.width}x${res.config.height}`,
    steps: t.steps,
    dtype,
    impl,
    text_encode_ms: t.text_encode_ms,
    unet_ms_step: t.unet_ms_step,
    step_ms: t.step_ms,
    host_overhead_us: t.host_overhead_us,
    vae_decode_ms: t.vae_decode_ms,
    end_to_end_s: t.end_to_end_s,
    it_s: t.it_s,
    peak_gpu_mib: t.peak_gpu_mib,
    unet_gflop: sig(res.unetFlops / 1e9),
    floor_ms: floorMs === undefined ? undefined : sig(floorMs),
    unet_over_floor: floorMs === undefined ? undefined : sig(t.unet_ms_step / floorMs),
    latents_mean_abs: t.latents_mean_abs === undefined ? undefined : sig(t.latents_mean_abs, 6),
  };
}

export async function runBenchmark(options: BenchmarkOptions = {}): Promise<{ rows: BenchRow[]; meta: Record<string, unknown> }> {
  const device = (options.device ?? defaultDevice()) as Device;
  const cuda = device !== "cpu";
  const quick = options.quick ?? false;
  const sections = new Set(options.only ?? ["native", "matmul", "pipeline", "few-step", "flops"]);
  const log = (msg: string) => {
    if (options.log !== false) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  };
  const rows: BenchRow[] = [];
  const nfo = info();
  const meta: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: machine(),
    node: process.version,
    libtorch: nfo.libtorchVersion,
    cuda: nfo.cudaVersion,
    devices: nfo.devices,
    threads: nfo.numThreads,
    device,
  };

  if (sections.has("native")) {
    log("native overhead (CPU)");
    for (const r of await runNativeBench({ quick: quick || cuda, noPython: options.noPython })) rows.push({ ...r } as unknown as BenchRow);
  }

  // matmul rate for the FLOP floor
  const rates: Record<string, number> = {};
  if (sections.has("matmul") || sections.has("pipeline")) {
    const dtypes: DType[] = cuda ? ["bfloat16", "float16"] : ["float32"];
    for (const dt of dtypes) {
      const n = cuda ? 8192 : quick ? 512 : 1024;
      log(`matmul rate ${dt} ${n}x${n} on ${device}`);
      rates[dt] = await matmulRate(device, dt, n, cuda ? 10 : 3);
      rows.push({ bench: "matmul", device, dtype: dt, n, tflop_s: sig(rates[dt] / 1e12), gflop_s: sig(rates[dt] / 1e9) });
    }
  }

  if (sections.has("pipeline") || sections.has("few-step")) {
    for (const run of modelRuns(options, device)) {
      log(`load ${run.dir} on ${device}${options.dtype ? ` (${options.dtype})` : ""}`);
      const pipe = await TextToVideoSDPipeline.fromPretrained(run.dir, { device, dtype: options.dtype as DType | undefined });
      // the floor uses the rate of the model's own dtype (float32 on CPU; bf16/fp16 on CUDA)
      const rate = rates[pipe.dtype] ?? rates.float32 ?? (cuda ? rates.float16 : undefined) ?? null;
      try {
        if (sections.has("pipeline")) {
          log(`pipeline ${run.name} ${run.frames} frames ${run.width ?? "default"}x${run.height ?? "default"}, ${run.steps} DDIM steps, CFG 9`);
          const res = await benchPipeline(pipe, {
            model: run.dir, device, frames: run.frames, height: run.height, width: run.width, steps: run.steps, guidanceScale: 9, seed: 0,
            python: !options.noPython,
          });
          rows.push(timingRow(run, res, "torchvid", res.torchvid, rate, pipe.dtype));
          if (res.python) {
            rows.push(timingRow(run, res, `python torch ${res.python.torch}`, res.python, rate, pipe.dtype));
            rows.push({
              bench: "pipeline", model: run.name, impl: "python / torchvid",
              unet_ms_step: sig(res.python.unet_ms_step / res.torchvid.unet_ms_step),
              step_ms: sig(res.python.step_ms / res.torchvid.step_ms),
              end_to_end_s: sig(res.python.end_to_end_s / res.torchvid.end_to_end_s),
              it_s: sig(res.torchvid.it_s / res.python.it_s),
            });
          }
        }
        if (sections.has("few-step")) {
          const lcmSteps = 4;
          const ddimSteps = quick ? Math.min(run.steps, 10) : 50;
          log(`few-step ${run.name}: ${lcmSteps} LCM vs ${ddimSteps} DDIM`);
          for (const [scheduler, steps] of [["lcm", lcmSteps], ["ddim", ddimSteps]] as const) {
            const res = await benchPipeline(pipe, {
              model: run.dir, device, frames: run.frames, height: run.height, width: run.width, steps, guidanceScale: 9, seed: 0, scheduler, python: false,
            });
            rows.push({
              bench: "few-step", model: run.name, shape: `${res.config.frames}x${res.config.width}x${res.config.height}`, scheduler, steps,
              end_to_end_s: res.torchvid.end_to_end_s, it_s: res.torchvid.it_s, unet_ms_step: res.torchvid.unet_ms_step,
            });
          }
        }
      } finally {
        await pipe.dispose();
      }
    }
  }

  if (sections.has("flops")) {
    const ms = readJson(join(root, "tools/convert/assets/configs/ms-1.7b/unet/config.json"));
    const shapes: [string, number, number, number][] = [
      ["ms-1.7b", 16, 256, 256],
      ["zeroscope-576w", 24, 576, 320],
      ["zeroscope-XL", 24, 1024, 576],
    ];
    for (const [name, f, w, h] of shapes) {
      const fl = unetFlops(ms, { batch: 2, frames: f, height: h / 8, width: w / 8 });
      const row: BenchRow = {
        bench: "flops", model: name, shape: `${f}x${w}x${h}`, unet_batch: 2,
        unet_tflop: sig(fl.total / 1e12), conv_tflop: sig(fl.conv / 1e12), linear_tflop: sig(fl.linear / 1e12), attention_tflop: sig(fl.attention / 1e12),
      };
      for (const [dt, r] of Object.entries(rates)) row[`floor_ms_${dt}`] = sig((fl.total / r) * 1e3);
      rows.push(row);
    }
  }

  if (process.env.TORCHVID_BENCH_OUT) {
    mkdirSync(process.env.TORCHVID_BENCH_OUT, { recursive: true });
    writeFileSync(join(process.env.TORCHVID_BENCH_OUT, "bench.json"), `${JSON.stringify({ meta, rows }, null, 2)}\n`);
  }
  return { rows, meta };
}

/** Rows grouped by section, one table each (columns differ between sections). */
export async function formatReport(rows: BenchRow[], meta: Record<string, unknown>): Promise<string> {
  const { formatTable } = await import("../lib/cli/bench.ts");
  const sections = [...new Set(rows.map((r) => String(r.bench)))];
  const head = `torchvid bench — ${meta.date}\n${meta.machine}; node ${meta.node}; libtorch ${meta.libtorch}${meta.cuda ? ` (CUDA ${meta.cuda})` : ""}; device ${meta.device}; threads ${meta.threads}`;
  return [head, ...sections.map((s) => `\n## ${s}\n${formatTable(rows.filter((r) => r.bench === s).map(({ bench: _b, ...r }) => r))}`)].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const val = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string) => (val(name) === undefined ? undefined : Number(val(name)));
  const { rows, meta } = await runBenchmark({
    model: val("model"), device: val("device"), dtype: val("dtype"), quick: args.includes("--quick"), json: args.includes("--json"),
    steps: num("steps"), frames: num("frames"), width: num("width"), height: num("height"), noPython: args.includes("--no-python"),
    only: val("only")?.split(","),
  });
  if (args.includes("--json")) console.log(JSON.stringify({ meta, rows }));
  else console.log(await formatReport(rows, meta));
}
