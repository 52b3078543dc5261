/**
 * `torchvid generate "prompt"`: text to video.
 */

import type { Argv, CommandModule } from "yargs";
import { checkStepsForModel, rejectRepeated } from "./arg-checks.ts";
import { checkInt, UsageError, type GlobalArgs } from "./common.ts";
import { checkModel, checkOutput, parsePipelineArgs, withPipelineOptions, type PipelineArgs } from "./options.ts";
import { encodeAndReport, samplingInputs, withRender } from "./render.ts";
import { runTextToVideo } from "./run-pipeline.ts";
import { resolveCliModel } from "./model-arg.ts";

interface GenerateArgs extends PipelineArgs, GlobalArgs {
  prompt: string;
  frames: number;
}

export async function generate(argv: GenerateArgs): Promise<void> {
  rejectRepeated(argv as unknown as Record<string, unknown>);
  const numFrames = checkInt(argv.frames, "frames", 1, 1024);
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
        ...samplingInputs(r, argv, { steps, guidance, seed }),
        numFrames,
        ...(width !== undefined ? { width } : {}),
        ...(height !== undefined ? { height } : {}),
      },
      () => r.reporter.phase("steps", { total: steps }),
    );
    await encodeAndReport(r, video, { output, fps, setup, steps, guidance, seed, prompt: argv.prompt });
  });
}

export const generateCommand: CommandModule<GlobalArgs, GenerateArgs> = {
  command: "generate <prompt>",
  describe: "Generate a video from a text prompt",
  builder: (y: Argv<GlobalArgs>) =>
    withPipelineOptions(
      y
        .positional("prompt", { type: "string", describe: "What the video shows", demandOption: true })
        .option("frames", { type: "number", default: 16, requiresArg: true, describe: "Number of frames", group: "Size:" }),
    )
      .example('$0 generate "an astronaut riding a horse"', "16 frames with the default model to out.mp4")
      .example('$0 generate "a red panda, 4k" --model models/ms-1.7b --steps 25 --scheduler dpm++ --seed 42 -o panda.mp4', "A converted ModelScope model, 25 DPM++ steps")
      .example('$0 generate "waves at sunset" --frames 24 --width 576 --height 320 --device cuda --dtype float16 -o waves.webm', "zeroscope 576w size on a GPU, as WebM")
      .example('$0 generate "a cat" -o frames/%04d.png --json', "Numbered PNG frames, JSON progress on stdout") as unknown as Argv<GenerateArgs>,
  handler: () => {},
};
