/**
 * Runs one job with the public library API: text-to-video or video-to-video on the cached
 * pipeline, a live preview from each step's latents, and the result written as an H.264 mp4 in
 * --out. Throws on failure or abort (the caller records it).
 */
import { join } from "node:path";
import { VideoToVideoSDPipeline, TextToVideoSDPipeline, exportVideo, readVideo, requestToOptions, schedulerFromName, type StepEvent, type UpscaleRequest } from "../index.ts";
import type { Job, JobResult } from "./job.ts";
import type { PipelineCache } from "./pipeline-cache.ts";
import { encodePreview, latentPreviewTensor, type Preview } from "./preview.ts";

export interface RunReport {
  step(event: { step: number; numSteps: number; elapsedMs: number }): void;
  preview(preview: Preview): void;
}

export class JobRunner {
  readonly outDir: string;
  readonly pipelines: PipelineCache;

  constructor(options: { outDir: string; pipelines: PipelineCache }) {
    this.outDir = options.outDir;
    this.pipelines = options.pipelines;
  }

  async run(job: Job, signal: AbortSignal, report: RunReport): Promise<JobResult> {
    const started = performance.now();
    const base = await this.pipelines.get(job.settings.model);
    signal.throwIfAborted();
    const pipe = job.kind === "upscale" ? VideoToVideoSDPipeline.fromPipe(base) : TextToVideoSDPipeline.fromPipe(base);
    if (job.settings.scheduler !== undefined) pipe.scheduler = schedulerFromName(job.settings.scheduler, base.scheduler.config);

    // One preview at a time: a step that ends while the last one is still encoding shows none.
    let previewing: Promise<void> | null = null;
    const onStep = (event: StepEvent) => {
      report.step({ step: event.step, numSteps: event.numSteps, elapsedMs: event.elapsedMs });
      if (previewing) return;
      let strip;
      try {
        strip = latentPreviewTensor(event.latents);
      } catch {
        return; // a preview is a nicety: it never fails the job
      }
      previewing = encodePreview(event.step, strip)
        .then((p) => report.preview(p))
        .catch(() => {})
        .finally(() => (previewing = null));
    };

    const options = { ...requestToOptions(job.settings), seed: job.settings.seed, signal, onStep };
    let output;
    try {
      if (job.kind === "upscale") {
        const source = await readVideo(join(this.outDir, job.source!.file), { signal });
        const { video: _video, ...rest } = options as typeof options & Partial<UpscaleRequest>;
        output = await (pipe as VideoToVideoSDPipeline).generate({ ...rest, video: source });
      } else {
        output = await (pipe as TextToVideoSDPipeline).generate(options);
      }
    } finally {
      await previewing;
      await pipe.dispose();
    }
    const video = output.frames[0];
    const written = await exportVideo(video, join(this.outDir, `${job.id}.mp4`), { fps: job.settings.fps, signal });
    return { width: written.width, height: written.height, numFrames: written.numFrames, fps: written.fps, seconds: (performance.now() - started) / 1000 };
  }
}
