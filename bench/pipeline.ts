/**
 * The pipeline benchmark (issue 5 Proof, issue 7 item 4): one text-to-video configuration, timed
 * stage by stage through the public API, beside the same TorchScript files driven by a plain
 * Python torch loop (bench/python/pipeline_loop.py).
 *
 * How each number is taken (performance.now around the component calls of a real generate()):
 * - text-encode ms: the text encoder calls (uncond "" + prompt with guidance), summed;
 * - UNet ms/step: median of the UNet forwards' own times: on the CPU as timed on the device
 *   thread around the forward alone (StepEvent.unetMs: no JS hop, no guidance), on CUDA as JS
 *   sees the forwardGuided() call followed by synchronize();
 * - step ms: median wall time between two onStep events (CFG cat, scale, UNet, guidance,
 *   scheduler step, permutes);
 * - host overhead/step µs: median over steps of (step wall - that step's UNet forward):
 *   everything around the UNet (the device-thread hop, CFG doubling and guidance, the scheduler
 *   step, the tensor-op bindings, onStep);
 * - JS loop µs/step (torchvid): step wall - the forwardGuided() call as JS sees it: the loop's own
 *   work on the JS thread, without the round trip to the device thread and the guidance there;
 * - VAE decode ms, end-to-end s (generate() call to frames in JS memory), it/s (steps / loop time).
 * On CUDA every wrapped call is followed by synchronize() so times are device times.
 *
 *   npx tsx bench/pipeline.ts [--model DIR] [--frames 8] [--height 32] [--width 32] [--steps 10] [--quick]
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TextToVideoSDPipeline } from "../lib/pipelines/index.ts";
import { DDIMScheduler, LCMScheduler } from "../lib/schedulers/index.ts";
import { memoryStats, resetPeakMemoryStats, setNumThreads, synchronize } from "../lib/runtime.ts";
import type { Device, DType } from "../lib/tensor.ts";
import { unetFlops } from "../lib/unet-flops.ts";
import { pythonWithTorch, runPythonJson, sig, summarise } from "./stats.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

const here = fileURLToPath(new URL(".", import.meta.url));

export interface PipelineBenchConfig {
  model: string;
  device: Device;
  dtype?: DType;
  frames: number;
  height?: number;
  width?: number;
  steps: number;
  guidanceScale: number;
  seed: number;
  /** "ddim" (default) or "lcm". */
  scheduler?: "ddim" | "lcm";
  /** Denoising steps of the untimed warm-up run (TorchScript optimises on its first calls). Defaults to 2. */
  warmupSteps?: number;
  /** Also run the Python baseline (DDIM only). Defaults to true. */
  python?: boolean;
  threads?: number;
  prompt?: string;
}

export interface PipelineTimings {
  text_encode_ms: number;
  unet_ms_step: number;
  step_ms: number;
  host_overhead_us: number;
  host_overhead_us_p90: number;
  /** torchvid only: step wall - the forwardGuided() call as JS sees it, i.e. the JS loop's own work (scheduler step, bindings, onStep) without the device-thread round trip and guidance. */
  js_loop_us?: number;
  vae_decode_ms: number;
  end_to_end_s: number;
  it_s: number;
  steps: number;
  latents_mean_abs?: number;
  peak_gpu_mib?: number;
}

export interface PipelineBenchResult {
  config: Required<Omit<PipelineBenchConfig, "python" | "threads" | "prompt" | "dtype">> & { dtype: string; threads: number; unetBatch: number };
  torchvid: PipelineTimings;
  python?: PipelineTimings & { torch: string };
  /** FLOPs of one UNet forward at this shape (lib/unet-flops.ts). */
  unetFlops: number;
}

const PROMPT = "an astronaut riding a horse on the moon";

/** Loads once; runs one configuration (warm-up, then the timed run); the Python loop after it. */
export async function benchPipeline(pipe: TextToVideoSDPipeline, cfg: PipelineBenchConfig): Promise<PipelineBenchResult> {
  const threads = cfg.threads ?? availableParallelism();
  if (cfg.device === "cpu") setNumThreads(threads);
  const cuda = cfg.device !== "cpu";
  const sync = async () => {
    if (cuda) await synchronize(cfg.device);
  };
  const height = cfg.height ?? pipe.unet.sampleSize * pipe.vaeScaleFactor;
  const width = cfg.width ?? pipe.unet.sampleSize * pipe.vaeScaleFactor;
  const schedulerKind = cfg.scheduler ?? "ddim";
  const original = pipe.scheduler;
  pipe.scheduler = schedulerKind === "lcm" ? LCMScheduler.fromConfig(original.config) : DDIMScheduler.fromConfig(original.config);

  // Wrap the three components' calls (instance properties shadow the prototype methods).
  let unetTimes: number[] = [];
  let callTimes: number[] = [];
  let textMs = 0;
  let vaeMs = 0;
  const unet = pipe.unet as unknown as { forwardGuided: (...a: unknown[]) => Promise<unknown> };
  const te = pipe.textEncoder as unknown as { encode: (...a: unknown[]) => Promise<unknown> };
  const vae = pipe.vae as unknown as { decode: (...a: unknown[]) => Promise<unknown> };
  const [uF, tE, vD] = [unet.forwardGuided, te.encode, vae.decode];
  unet.forwardGuided = async (...a) => {
    const t0 = performance.now();
    const out = await uF.apply(pipe.unet, a);
    await sync();
    // CUDA kernels run after the call returns: only a synchronized JS-side time is the forward's.
    callTimes.push(performance.now() - t0);
    if (cuda) unetTimes.push(callTimes[callTimes.length - 1]);
    return out;
  };
  te.encode = async (...a) => {
    const t0 = performance.now();
    const out = await tE.apply(pipe.textEncoder, a);
    await sync();
    textMs += performance.now() - t0;
    return out;
  };
  vae.decode = async (...a) => {
    const t0 = performance.now();
    const out = await vD.apply(pipe.vae, a);
    await sync();
    vaeMs += performance.now() - t0;
    return out;
  };

  const run = async (steps: number) => {
    unetTimes = [];
    callTimes = [];
    textMs = 0;
    vaeMs = 0;
    const elapsed: number[] = [];
    let meanAbs: number | undefined;
    const t0 = performance.now();
    const out = await pipe.generate({
      prompt: cfg.prompt ?? PROMPT,
      numFrames: cfg.frames,
      height,
      width,
      numInferenceSteps: steps,
      guidanceScale: cfg.guidanceScale,
      seed: cfg.seed,
      onStep: (e) => {
        elapsed.push(e.elapsedMs);
        if (!cuda) unetTimes.push(e.unetMs);
        if (e.step === e.numSteps) {
          // a check that the Python loop computes the same thing (one scalar, after the last step's timing)
          const a = e.latents.abs();
          const s = a.sum();
          meanAbs = Number((s.dataSync() as Float32Array)[0]) / e.latents.numel;
          a.dispose();
          s.dispose();
        }
      },
    });
    const end = (performance.now() - t0) / 1e3;
    return { out, end, elapsed, meanAbs };
  };

  let result: PipelineBenchResult;
  try {
    if ((cfg.warmupSteps ?? 2) > 0) await run(cfg.warmupSteps ?? 2);
    if (cuda) resetPeakMemoryStats(cfg.device);
    const { out, end, elapsed, meanAbs } = await run(cfg.steps);
    const walls = elapsed.map((e, i) => e - (i === 0 ? 0 : elapsed[i - 1]));
    const overheads = walls.map((w, i) => (w - unetTimes[i]) * 1e3);
    const oh = summarise(overheads);
    const torchvid: PipelineTimings = {
      text_encode_ms: sig(textMs),
      unet_ms_step: sig(summarise(unetTimes).median),
      step_ms: sig(summarise(walls).median),
      host_overhead_us: sig(oh.median),
      host_overhead_us_p90: sig(oh.p90),
      js_loop_us: sig(summarise(walls.map((w, i) => (w - callTimes[i]) * 1e3)).median),
      vae_decode_ms: sig(vaeMs),
      end_to_end_s: sig(end),
      it_s: sig(walls.length / (elapsed[elapsed.length - 1] / 1e3)),
      steps: walls.length,
      latents_mean_abs: meanAbs,
    };
    if (cuda) torchvid.peak_gpu_mib = sig(memoryStats(cfg.device).peakAllocated / 2 ** 20);
    void out;
    const cfgBatch = cfg.guidanceScale > 1 ? 2 : 1;
    const latentH = height / pipe.vaeScaleFactor;
    const latentW = width / pipe.vaeScaleFactor;
    result = {
      config: {
        model: cfg.model, device: cfg.device, dtype: pipe.dtype, frames: cfg.frames, height, width, steps: cfg.steps,
        guidanceScale: cfg.guidanceScale, seed: cfg.seed, scheduler: schedulerKind, warmupSteps: cfg.warmupSteps ?? 2, threads, unetBatch: cfgBatch,
      },
      torchvid,
      unetFlops: unetFlops(pipe.unet.config, { batch: cfgBatch, frames: cfg.frames, height: latentH, width: latentW }).total,
    };
  } finally {
    unet.forwardGuided = uF;
    te.encode = tE;
    vae.decode = vD;
    delete (unet as Partial<typeof unet>).forwardGuided;
    delete (te as Partial<typeof te>).encode;
    delete (vae as Partial<typeof vae>).decode;
    pipe.scheduler = original;
  }

  const python = cfg.python === false || schedulerKind !== "ddim" ? null : pythonWithTorch();
  if (python) {
    const ids = ["", cfg.prompt ?? PROMPT].map((t) => pipe.tokenizer.encode(t, { padding: "max_length", maxLength: pipe.tokenizer.modelMaxLength, truncation: true }).inputIds);
    const dir = mkdtempSync(join(tmpdir(), "torchvid-bench-"));
    try {
      const specPath = join(dir, "spec.json");
      writeFileSync(specPath, JSON.stringify({
        model: cfg.model, device: cfg.device, dtype: pipe.dtype, threads, frames: cfg.frames, height, width, steps: cfg.steps,
        guidance: cfg.guidanceScale, seed: cfg.seed, ids, warmup_steps: cfg.warmupSteps ?? 2,
      }));
      const p = runPythonJson<Record<string, number> & { torch: string }>(python, [join(here, "python", "pipeline_loop.py"), specPath]);
      result.python = {
        torch: p.torch,
        text_encode_ms: sig(p.text_encode_ms),
        unet_ms_step: sig(p.unet_ms_median),
        step_ms: sig(p.step_ms_median),
        host_overhead_us: sig(p.host_overhead_us_median),
        host_overhead_us_p90: sig(p.host_overhead_us_p90),
        vae_decode_ms: sig(p.vae_decode_ms),
        end_to_end_s: sig(p.end_to_end_s),
        it_s: sig(p.it_per_s),
        steps: p.steps,
        latents_mean_abs: p.latents_mean_abs,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return result;
}

export function readModelDtype(model: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(model, "manifest.json"), "utf8")) as { dtype?: string }).dtype;
  } catch {
    return undefined;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const mi = args.indexOf("--model");
  const model = mi >= 0 ? args[mi + 1] : join(here, "..", "models", "tiny");
  const di = args.indexOf("--device");
  const device = (di >= 0 ? args[di + 1] : "cpu") as Device;
  const pipe = await TextToVideoSDPipeline.fromPretrained(model, { device });
  const res = await benchPipeline(pipe, {
    model, device, frames: opt("frames", 8), height: opt("height", 32), width: opt("width", 32), steps: opt("steps", 10),
    guidanceScale: opt("guidance", 9), seed: opt("seed", 0), scheduler: args.includes("--lcm") ? "lcm" : "ddim",
  });
  console.log(JSON.stringify(res, null, 2));
  await pipe.dispose();
}
