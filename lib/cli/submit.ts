/**
 * `torchvid submit --redis URL PROMPT [generate flags] [--wait] [--json]`: queues one generation
 * job (or, with --video, a video-to-video job) and prints its id. The request is checked here, by
 * the same checker the workers' producer API uses: a bad job is refused with exit 2, not queued.
 * With --wait it shows the job's progress and exits 0 once the video is stored, or 1 with the
 * job's error.
 */
import type { Argv, CommandModule } from "yargs";
import { AbortError } from "../errors.ts";
import type { GenerateRequest, UpscaleRequest } from "../requests.ts";
import { checkInt, EXIT_OK, parseSeed, UsageError, type GlobalArgs } from "./common.ts";
import type { PipelineArgs } from "./options.ts";
import { createReporter } from "./progress.ts";
import { SCHEDULER_NAMES } from "./run-pipeline.ts";

/** The generate flags a job carries (as `generate` names them), without generate's defaults: the worker applies those. */
type JobFlags = Pick<PipelineArgs, "guidance" | "seed" | "negative" | "width" | "height" | "fps" | "scheduler" | "model"> & { frames?: number; steps?: number };

interface SubmitArgs extends GlobalArgs, JobFlags {
  redis: string;
  queue: string;
  prompt: string;
  video?: string;
  strength?: number;
  priority?: number;
  jobId?: string;
  attempts: number;
  wait: boolean;
  json: boolean;
}

/** Request fields as the flags that set them, so a refusal names what the user typed. */
const FLAG_OF: Record<string, string> = {
  numFrames: "--frames", numInferenceSteps: "--steps", guidanceScale: "--guidance", negativePrompt: "--negative", seed: "--seed",
  width: "--width", height: "--height", fps: "--fps", scheduler: "--scheduler", model: "--model", video: "--video", strength: "--strength",
};

function asFlags(message: string): string {
  return message.replace(/\b(numFrames|numInferenceSteps|guidanceScale|negativePrompt|seed|width|height|fps|scheduler|model|video|strength)\b/g, (m) => FLAG_OF[m] ?? m);
}

export function buildRequest(argv: SubmitArgs): GenerateRequest | UpscaleRequest {
  const seed = parseSeed(argv.seed);
  if (typeof seed === "bigint") throw new UsageError(`--seed must be at most ${Number.MAX_SAFE_INTEGER} for a queued job (JSON carries larger numbers inexactly), got ${seed}`);
  const fields: Record<string, unknown> = {
    prompt: argv.prompt,
    negativePrompt: argv.negative,
    numFrames: argv.frames,
    numInferenceSteps: argv.steps,
    guidanceScale: argv.guidance,
    seed,
    width: argv.width,
    height: argv.height,
    fps: argv.fps,
    scheduler: argv.scheduler,
    model: argv.model,
  };
  if (argv.video !== undefined) Object.assign(fields, { video: argv.video, strength: argv.strength });
  else if (argv.strength !== undefined) throw new UsageError("--strength applies to video-to-video jobs: pass --video FILE too");
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  return fields as unknown as GenerateRequest | UpscaleRequest;
}

export async function submit(argv: SubmitArgs): Promise<number> {
  const request = buildRequest(argv);
  checkInt(argv.attempts, "attempts", 1, 1000);
  const { VideoJobs } = await import("../jobs/producer.ts");
  const { parseRedisUrl } = await import("../jobs/connection.ts");
  try {
    parseRedisUrl(argv.redis);
  } catch (err) {
    throw new UsageError(`--redis: ${(err as Error).message}`);
  }
  const jobs = new VideoJobs({ connection: argv.redis, queue: argv.queue, attempts: argv.attempts });
  try {
    let job;
    try {
      const options = { ...(argv.jobId !== undefined ? { jobId: argv.jobId } : {}), ...(argv.priority !== undefined ? { priority: argv.priority } : {}) };
      job = "video" in request ? await jobs.upscale(request, options) : await jobs.generate(request as GenerateRequest, options);
    } catch (err) {
      // The request checker's refusals are the user's to fix: usage errors, exit 2.
      if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(asFlags(err.message));
      throw err;
    }
    if (argv.json) process.stdout.write(`${JSON.stringify({ event: "submitted", jobId: job.id, queue: argv.queue, kind: job.kind, seed: job.seed })}\n`);
    else process.stdout.write(`${job.id}\n`);
    if (!argv.wait) return EXIT_OK;
    return await waitFor(job, argv);
  } finally {
    await jobs.close();
  }
}

async function waitFor(job: import("../jobs/producer.ts").VideoJob, argv: SubmitArgs): Promise<number> {
  const reporter = createReporter(argv.json);
  reporter.note(`Waiting for job ${job.id} on queue ${argv.queue} (Ctrl-C stops waiting; the job stays queued)`);
  let started = false;
  job.on("progress", (p) => {
    if (p.phase === "steps" && p.step !== undefined && p.numSteps !== undefined) {
      if (!started) reporter.phase("steps", { total: p.numSteps });
      started = true;
      reporter.step({ step: p.step, numSteps: p.numSteps });
    } else if (p.phase === "encode") reporter.phase("encode", { total: 1 });
  });
  // Ctrl-C ends the wait, not the job: it is in Redis and a worker will still run it.
  let onSignal: () => void = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = () => reject(new AbortError(`Stopped waiting; job ${job.id} stays in the queue`));
  });
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const result = await Promise.race([job.finished(), interrupted]);
    reporter.result({ jobId: job.id, video: result.video, sidecar: result.sidecar, seed: result.seed, attempt: result.attempt }, `Wrote ${result.video} (job ${job.id}, seed ${result.seed})`);
    return EXIT_OK;
  } finally {
    reporter.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export const submitCommand: CommandModule<GlobalArgs, SubmitArgs> = {
  command: "submit <prompt>",
  describe: "Queue a generation job for `torchvid worker` (BullMQ on Redis); prints the job id",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional("prompt", { type: "string", demandOption: true, describe: "What the video shows" })
      .option("redis", { type: "string", demandOption: true, describe: "Redis URL, e.g. redis://127.0.0.1:6379" })
      .option("queue", { type: "string", default: "torchvid", describe: "Queue name" })
      .option("frames", { type: "number", describe: "Number of frames (default 16)", group: "Generation:" })
      .option("steps", { type: "number", describe: "Denoising steps (default 50)", group: "Generation:" })
      .option("guidance", { type: "number", describe: "Classifier-free guidance scale (default 9)", group: "Generation:" })
      .option("seed", { type: "string", describe: "Random seed (chosen now when left out, so a retry makes the same video)", group: "Generation:" })
      .option("negative", { type: "string", describe: "Negative prompt", group: "Generation:" })
      .option("width", { type: "number", describe: "Frame width, a multiple of 8", group: "Generation:" })
      .option("height", { type: "number", describe: "Frame height, a multiple of 8", group: "Generation:" })
      .option("fps", { type: "number", describe: "Frames per second of the video (default 8)", group: "Generation:" })
      .option("scheduler", { type: "string", describe: `Sampler: ${SCHEDULER_NAMES.join(", ")} (default: the model's)`, group: "Generation:" })
      .option("model", { type: "string", describe: "Model the job needs; a worker serving another model refuses it", group: "Generation:" })
      .option("video", { type: "string", describe: "Re-render this video (video-to-video; a path the workers can read)", group: "Video-to-video:" })
      .option("strength", { type: "number", describe: "How much to change --video, in (0, 1] (default 0.6)", group: "Video-to-video:" })
      .option("priority", { type: "number", describe: "1 is the highest; jobs without one run first in, first out" })
      .option("job-id", { type: "string", describe: "Your own job id (letters, digits, _ and -); names the result file" })
      .option("attempts", { type: "number", default: 3, describe: "Tries for failures worth retrying (out of memory...)" })
      .option("wait", { type: "boolean", default: false, describe: "Show progress; exit 0 when the video is written, 1 with the job's error" })
      .option("json", { type: "boolean", default: false, describe: "Print the id, progress and result as JSON lines" })
      .example('$0 submit --redis redis://127.0.0.1:6379 "a corgi on the beach" --steps 25 --seed 7', "Queue a job, print its id")
      .example('$0 submit --redis redis://127.0.0.1:6379 "waves at sunset" --wait', "Queue and wait for the video") as unknown as Argv<SubmitArgs>,
  handler: () => {},
};
