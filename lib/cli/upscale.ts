/**
 * `torchvid upscale IN -o OUT --prompt "..."`: video-to-video (the zeroscope XL recipe: resize
 * the input to the new size, re-noise it to `strength`, denoise with the prompt).
 */

import type { Argv, CommandModule } from "yargs";
import { RESIZE_MODES, type ResizeMode } from "../video/convert.ts";
import { readVideo } from "../video/read.ts";
import { checkInt, checkNumber, UsageError, type GlobalArgs } from "./common.ts";
import { checkStepsForModel } from "./arg-checks.ts";
import { checkModel, checkOutput, parsePipelineArgs, withPipelineOptions, type PipelineArgs } from "./options.ts";
import { encodeAndReport, samplingInputs, withRender } from "./render.ts";
import { runVideoToVideo } from "./run-pipeline.ts";
import { resolveCliModel } from "./model-arg.ts";

interface UpscaleArgs extends PipelineArgs, GlobalArgs {
  input: string;
  prompt: string;
  strength: number;
  frames?: number;
  resize: ResizeMode;
}

export async function upscale(argv: UpscaleArgs): Promise<void> {
  const strength = checkNumber(argv.strength, "strength", 0, 1);
  if (strength === 0) throw new UsageError("--strength must be above 0 (0 would return the input unchanged)");
  const maxFrames = argv.frames === undefined ? undefined : checkInt(argv.frames, "frames", 1, 1024);
  if (!argv.prompt || !argv.prompt.trim()) throw new UsageError('--prompt is empty: pass the text that describes the video, e.g. --prompt "a red panda eating bamboo"');
  const { setup, steps, guidance, width, height, seed } = parsePipelineArgs(argv, { guidance: 15 });
  if (!argv.output) throw new UsageError("Pass the output file with -o, e.g. -o upscaled.mp4");
  const output = argv.output;
  checkOutput(output);
  checkModel(setup.model);
  checkStepsForModel(steps, setup.model);

  await withRender(argv.json, async (r) => {
    r.reporter.phase("read", { message: `Reading ${argv.input}` });
    const video = await readVideo(argv.input, {
      ...(maxFrames !== undefined ? { maxFrames } : {}),
      ...(width !== undefined ? { width } : {}),
      ...(height !== undefined ? { height } : {}),
      resize: argv.resize,
      signal: r.signal,
    });
    if (video.width % 8 !== 0 || video.height % 8 !== 0) {
      throw new UsageError(`${argv.input} is ${video.width}x${video.height}; pass --width and --height (multiples of 8) to resize it`);
    }
    const fps = argv.fps ?? video.fps;
    await resolveCliModel(setup, argv, r.signal);
    r.reporter.phase("load", { message: `Loading ${setup.model}` });
    const out = await runVideoToVideo(
      setup,
      { ...samplingInputs(r, argv, { steps, guidance, seed }), video, strength },
      () => r.reporter.phase("steps", { total: Math.max(1, Math.floor(steps * strength)) }),
    );
    await encodeAndReport(r, out, { output, fps, setup, steps, guidance, seed, prompt: argv.prompt, input: argv.input, strength });
  });
}

export const upscaleCommand: CommandModule<GlobalArgs, UpscaleArgs> = {
  command: "upscale <input>",
  describe: "Re-render a video at a new size with a prompt (video-to-video)",
  builder: (y: Argv<GlobalArgs>) =>
    withPipelineOptions(
      y
        .positional("input", { type: "string", describe: "Video file (mp4, webm, gif, webp), image folder or glob like 'frames/*.png'", demandOption: true })
        .option("prompt", { alias: "p", type: "string", requiresArg: true, demandOption: true, describe: "What the video shows", group: "Sampling:" })
        .option("strength", { type: "number", requiresArg: true, default: 0.6, describe: "How much to change the input: 0 keeps it, 1 ignores it", group: "Sampling:" })
        .option("frames", { type: "number", requiresArg: true, describe: "Read at most this many frames of the input", group: "Size:" })
        .option("resize", { type: "string", requiresArg: true, choices: RESIZE_MODES, default: "fill", describe: "How the input fits --width x --height", group: "Size:" }),
    )
      .example('$0 upscale out.mp4 -o out-xl.mp4 --model models/zeroscope-xl --width 1024 --height 576 --prompt "a red panda"', "The zeroscope XL recipe (strength 0.6)")
      .example('$0 upscale clip.gif -o clip.webm --prompt "oil painting" --strength 0.8 --steps 30', "Restyle a GIF with the default model at its own size")
      .example('$0 upscale "frames/*.png" -o redo.mp4 --prompt "a cat" --width 256 --height 256 --resize cover', "From numbered images, cropped to a square") as unknown as Argv<UpscaleArgs>,
  handler: () => {},
};
