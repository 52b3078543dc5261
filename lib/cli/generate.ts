/**
 * `torchvid generate "prompt"`: text to video.
 */

import type { Argv, CommandModule } from "yargs";
import { checkStepsForModel, rejectRepeated } from "./arg-checks.ts";
import { checkInt, UsageError, type GlobalArgs } from "./common.ts";
import { checkModel, checkOutput, parsePipelineArgs, withPipelineOptions, type PipelineArgs } from "./options.ts";
import { encodeAndReport, samplingInputs, withRender } from "./render.ts";
import { runTextToVideo, runTextToVideoBatch } from "./run-pipeline.ts";
import { numberedOutput, readPromptsFile } from "./batch.ts";
import type { GenerateRequest } from "../requests.ts";
import { resolveCliModel } from "./model-arg.ts";

interface GenerateArgs extends PipelineArgs, GlobalArgs {
  prompt?: string;
  frames: number;
  prompts?: string;
  numVideos: number;
}

export async function generate(argv: GenerateArgs): Promise<void> {
  rejectRepeated(argv as unknown as Record<string, unknown>);
  const numFrames = checkInt(argv.frames, "frames", 1, 1024);
  const numVideos = checkInt(argv.numVideos, "num-videos", 1, 16);
  if (argv.prompts !== undefined) {
    if (argv.prompt !== undefined) throw new UsageError("Pass a prompt or --prompts FILE, not both");
    return generateBatch(argv, readPromptsFile(argv.prompts), numFrames, numVideos);
  }
  if (argv.prompt === undefined) throw new UsageError('Pass the text to render, e.g. torchvid generate "a red panda eating bamboo", or a prompt file with --prompts FILE');
  if (numVideos > 1) return generateBatch(argv, [{ prompt: argv.prompt ?? "" }], numFrames, numVideos);
  if (!argv.prompt || !argv.prompt.trim()) throw new UsageError("The prompt is empty: pass the text to render, e.g. torchvid generate \"a red panda eating bamboo\"");
  const { setup, steps, guidance, width, height, seed } = parsePipelineArgs(argv, { guidance: 9 });
  const output = argv.output ?? "out.mp4";
  const fps = argv.fps ?? 8;
  checkOutput(output);
  checkModel(setup.model);
  checkStepsForModel(steps, setup.model);

  await withRender(argv.json, async (r) => {
    await resolveCliModel(setup, argv, r.signal);
    r.reporter.phase("load", { message: `Loading ${setup.model}` });
    const video = await runTextToVideo(
      setup,
      {
        ...samplingInputs(r, argv as GenerateArgs & { prompt: string }, { steps, guidance, seed }),
        numFrames,
        ...(width !== undefined ? { width } : {}),
        ...(height !== undefined ? { height } : {}),
      },
      () => r.reporter.phase("steps", { total: steps }),
    );
    await encodeAndReport(r, video, { output, fps, setup, steps, guidance, seed, prompt: argv.prompt! });
  });
}

/**
 * Several prompts (--prompts) and/or several videos per prompt (--num-videos) on one loaded
 * pipeline. Line N's videos go to out-00N.mp4 (out-00N-K.mp4 for its K-th video); a line without
 * a seed uses --seed + N - 1, so every video can be made again alone.
 */
async function generateBatch(argv: GenerateArgs, requests: GenerateRequest[], numFrames: number, numVideos: number): Promise<void> {
  for (const r of requests) if (!r.prompt.trim()) throw new UsageError("The prompt is empty: pass the text to render, e.g. torchvid generate \"a red panda eating bamboo\"");
  const { setup, steps, guidance, width, height, seed } = parsePipelineArgs(argv, { guidance: 9 });
  const output = argv.output ?? "out.mp4";
  const batch = argv.prompts !== undefined;
  const jobs = requests.map((q, i) => {
    const perPrompt = q.numVideosPerPrompt ?? numVideos;
    const outputs = Array.from({ length: perPrompt }, (_, k) => numberedOutput(output, batch ? i + 1 : null, perPrompt > 1 ? k + 1 : null));
    return { q, perPrompt, outputs, seed: q.seed ?? (typeof seed === "bigint" ? seed + BigInt(i) : seed + i), steps: q.numInferenceSteps ?? steps };
  });
  for (const j of jobs) for (const o of j.outputs) checkOutput(o);
  checkModel(setup.model);

  await withRender(argv.json, async (r) => {
    await resolveCliModel(setup, argv, r.signal);
    r.reporter.phase("load", { message: `Loading ${setup.model}` });
    const inputs = jobs.map((j) => ({
      ...samplingInputs(r, { prompt: j.q.prompt, ...(j.q.negativePrompt ?? argv.negative) !== undefined ? { negative: j.q.negativePrompt ?? argv.negative } : {} }, { steps: j.steps, guidance: j.q.guidanceScale ?? guidance, seed: j.seed }),
      numFrames: j.q.numFrames ?? numFrames,
      numVideosPerPrompt: j.perPrompt,
      ...(j.q.eta !== undefined ? { eta: j.q.eta } : {}),
      ...((j.q.width ?? width) !== undefined ? { width: j.q.width ?? width } : {}),
      ...((j.q.height ?? height) !== undefined ? { height: j.q.height ?? height } : {}),
      onDecode: () => r.reporter.phase("decode"),
    }));
    let current = 0;
    await runTextToVideoBatch(
      setup,
      inputs.map((input, i) => ({ ...input, onStep: (e) => (i === current ? r.reporter.step(e) : undefined) })),
      async (i, videos) => {
        const j = jobs[i]!;
        for (let k = 0; k < videos.length; k++) {
          await encodeAndReport(r, videos[k]!, { output: j.outputs[k]!, fps: j.q.fps ?? argv.fps ?? 8, setup, steps: j.steps, guidance: j.q.guidanceScale ?? guidance, seed: j.seed, prompt: j.q.prompt });
        }
        current = i + 1;
        if (current < jobs.length) r.reporter.phase("steps", { total: jobs[current]!.steps });
      },
      () => r.reporter.phase("steps", { total: jobs[0]!.steps }),
    );
  });
}

export const generateCommand: CommandModule<GlobalArgs, GenerateArgs> = {
  command: "generate [prompt]",
  describe: "Generate a video from a text prompt",
  builder: (y: Argv<GlobalArgs>) =>
    withPipelineOptions(
      y
        .positional("prompt", { type: "string", describe: "What the video shows (or --prompts FILE)" })
        .option("frames", { type: "number", default: 16, requiresArg: true, describe: "Number of frames", group: "Size:" })
        .option("prompts", { type: "string", requiresArg: true, describe: "A file of prompts, one per line, or JSONL with per-line options ({\"prompt\":...,\"seed\":...}); outputs out-001.mp4, out-002.mp4, ...", group: "Sampling:" })
        .option("num-videos", { type: "number", default: 1, requiresArg: true, describe: "Videos per prompt (out-1.mp4, out-2.mp4, ...)", group: "Sampling:" }),
    )
      .example('$0 generate "an astronaut riding a horse"', "16 frames with the default model to out.mp4")
      .example('$0 generate "a red panda, 4k" --model models/ms-1.7b --steps 25 --scheduler dpm++ --seed 42 -o panda.mp4', "A converted ModelScope model, 25 DPM++ steps")
      .example('$0 generate "waves at sunset" --frames 24 --width 576 --height 320 --device cuda --dtype float16 -o waves.webm', "zeroscope 576w size on a GPU, as WebM")
      .example('$0 generate "a cat" -o frames/%04d.png --json', "Numbered PNG frames, JSON progress on stdout")
      .example("$0 generate --prompts prompts.jsonl --num-videos 2 -o clips/out.mp4", "Every line of a prompt file, two videos each") as unknown as Argv<GenerateArgs>,
  handler: () => {},
};
