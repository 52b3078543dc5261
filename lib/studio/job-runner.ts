/**
 * Runs one job with the public library API: text-to-video or video-to-video on the cached
 * pipeline, a live preview from each step's latents, and the result written as an H.264 mp4 in
 * --out. Throws on failure or abort (the caller records it).
 */
import { join } from "node:path";
import { exportVideo, generateFromRequest, readVideo, type StepEvent } from "../index.ts";
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

    let video;
    try {
      const source = job.kind === "upscale" ? await readVideo(join(this.outDir, job.source!.file), { signal }) : undefined;
      video = await generateFromRequest(base, job.settings, { video: source, signal, onStep });
    } finally {
      await previewing;
    }
    const written = await exportVideo(video, join(this.outDir, `${job.id}.mp4`), { fps: job.settings.fps, signal });
    return { width: written.width, height: written.height, numFrames: written.numFrames, fps: written.fps, seconds: (performance.now() - started) / 1000 };
  }
}
