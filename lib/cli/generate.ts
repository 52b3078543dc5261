/**
 * `torchvid generate "prompt"`: text to video.
 */

import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { exportVideo } from "../video/export.ts";
import { checkInt, UsageError, type GlobalArgs } from "./common.ts";
import { checkModel, checkOutput, interruptible, parsePipelineArgs, seedForJson, throwIfInterrupted, withPipelineOptions, type PipelineArgs } from "./options.ts";
import { createReporter } from "./progress.ts";
import { runTextToVideo } from "./run-pipeline.ts";

interface GenerateArgs extends PipelineArgs, GlobalArgs {
  prompt: string;
  frames: number;
}

export async function generate(argv: GenerateArgs): Promise<void> {
  const numFrames = checkInt(argv.frames, "frames", 1, 1024);
  if (!argv.prompt || !argv.prompt.trim()) throw new UsageError("The prompt is empty: pass the text to render, e.g. torchvid generate \"a red panda eating bamboo\"");
  const { setup, steps, guidance, width, height, seed } = parsePipelineArgs(argv, { guidance: 9 });
  const output = argv.output ?? "out.mp4";
  const fps = argv.fps ?? 8;
  checkOutput(output);
  checkModel(setup.model);

  const reporter = createReporter(argv.json);
  const run = interruptible(reporter);
  const started = Date.now();
  try {
    reporter.phase("load", { message: `Loading ${setup.model}` });
    const video = await runTextToVideo(
      setup,
      {
        prompt: argv.prompt,
        ...(argv.negative !== undefined ? { negativePrompt: argv.negative } : {}),
        numFrames,
        numInferenceSteps: steps,
        guidanceScale: guidance,
        seed,
        ...(width !== undefined ? { width } : {}),
        ...(height !== undefined ? { height } : {}),
        signal: run.signal,
        onStep: (e) => reporter.step(e),
        onDecode: () => reporter.phase("decode"),
      },
      () => reporter.phase("steps", { total: steps }),
    );
    throwIfInterrupted(run.signal);
    reporter.phase("encode", { total: video.numFrames, message: `Writing ${output}` });
    const written = await exportVideo(video, output, { fps, signal: run.signal, onProgress: (p) => reporter.encode(p.frame, p.numFrames) });
    const elapsedMs = Date.now() - started;
    reporter.result(
      {
        output: resolve(output),
        format: written.format,
        numFrames: written.numFrames,
        width: written.width,
        height: written.height,
        fps: written.fps,
        seed: seedForJson(seed),
        prompt: argv.prompt,
        model: resolve(setup.model),
        steps,
        guidance,
        scheduler: setup.scheduler ?? null,
        elapsedMs,
      },
      `Wrote ${output} (${written.numFrames} frames, ${written.width}x${written.height}, ${written.fps} fps, seed ${seed}) in ${(elapsedMs / 1000).toFixed(1)} s`,
    );
  } finally {
    run.dispose();
    reporter.close();
  }
}

export const generateCommand: CommandModule<GlobalArgs, GenerateArgs> = {
  command: "generate <prompt>",
  describe: "Generate a video from a text prompt",
  builder: (y: Argv<GlobalArgs>) =>
    withPipelineOptions(
      y
        .positional("prompt", { type: "string", describe: "What the video shows", demandOption: true })
        .option("frames", { type: "number", default: 16, describe: "Number of frames", group: "Size:" }),
    )
      .example('$0 generate "an astronaut riding a horse"', "16 frames with the default model to out.mp4")
      .example('$0 generate "a red panda, 4k" --model models/ms-1.7b --steps 25 --scheduler dpm++ --seed 42 -o panda.mp4', "A converted ModelScope model, 25 DPM++ steps")
      .example('$0 generate "waves at sunset" --frames 24 --width 576 --height 320 --device cuda --dtype float16 -o waves.webm', "zeroscope 576w size on a GPU, as WebM")
      .example('$0 generate "a cat" -o frames/%04d.png --json', "Numbered PNG frames, JSON progress on stdout") as unknown as Argv<GenerateArgs>,
  handler: () => {},
};
