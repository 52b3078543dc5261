/**
 * Test-only preload for `torchvid worker` (node --import tsx --import tests/helpers/jobs-faults.ts):
 * wraps TextToVideoSDPipeline.prototype.generate so marker words in a prompt inject faults,
 * without any hook in the production code.
 *   [slow]   waits TORCHVID_FAULTS_SLOW_MS (default 2500) first, so a test can act mid-job
 *            (the wait ends early when the job's signal aborts, like a real step would)
 *   [poison] SIGKILLs its own worker, every time (a job that crashes whoever runs it)
 *   [oom]    throws ERR_TORCHVID_OOM, as a GPU out of memory would
 * Every start and end is appended to TORCHVID_FAULTS_JOURNAL (JSON lines) so a test can count
 * how often each prompt really ran and finished, and in which process.
 */
import { appendFileSync } from "node:fs";
import { TextToVideoSDPipeline, TorchvidError, type GenerateOptions } from "../../lib/index.ts";

const journal = process.env.TORCHVID_FAULTS_JOURNAL;
const slowMs = Number(process.env.TORCHVID_FAULTS_SLOW_MS ?? 2500);

function note(event: string, prompt: string): void {
  if (journal) appendFileSync(journal, `${JSON.stringify({ event, prompt, pid: process.pid, at: Date.now() })}\n`);
}

const original = TextToVideoSDPipeline.prototype.generate;
TextToVideoSDPipeline.prototype.generate = async function (this: TextToVideoSDPipeline, options: GenerateOptions) {
  const prompt = typeof options.prompt === "string" ? options.prompt : "";
  note("start", prompt);
  if (prompt.includes("[poison]")) process.kill(process.pid, "SIGKILL");
  if (prompt.includes("[oom]")) {
    note("oom", prompt);
    throw new TorchvidError("ERR_TORCHVID_OOM", "CUDA out of memory. Tried to allocate 20.00 GiB (simulated by the test)");
  }
  if (prompt.includes("[slow]")) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, slowMs);
      options.signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  const result = await original.call(this, options);
  note("end", prompt);
  return result;
} as typeof original;
