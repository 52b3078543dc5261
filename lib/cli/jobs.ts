/**
 * `torchvid jobs --redis URL [--queue NAME]`: the queue at a glance: active, waiting, done and
 * failed jobs with their prompt, tries, and the video or the error.
 */
import type { Argv, CommandModule } from "yargs";
import type { VideoJobSummary } from "../jobs/producer.ts";
import { checkInt, EXIT_OK, UsageError, type GlobalArgs } from "./common.ts";

interface JobsArgs extends GlobalArgs {
  redis: string;
  queue: string;
  limit: number;
  json: boolean;
}

/** BullMQ's state names as people say them. */
const STATE_LABEL: Record<string, string> = { active: "active", waiting: "waiting", prioritized: "waiting", delayed: "retry-wait", completed: "done", failed: "failed" };

function clip(text: string, width: number): string {
  const one = text.replace(/\s+/g, " ");
  return one.length <= width ? one : `${one.slice(0, width - 1)}…`;
}

export function formatJobs(jobs: VideoJobSummary[], counts: Record<string, number>): string {
  const lines = [
    `active ${counts.active ?? 0}, waiting ${(counts.waiting ?? 0) + (counts.prioritized ?? 0)}, retry-wait ${counts.delayed ?? 0}, done ${counts.completed ?? 0}, failed ${counts.failed ?? 0}`,
  ];
  if (jobs.length === 0) return lines.join("\n");
  const rows = jobs.map((j) => {
    const progress = j.state === "active" && j.progress?.step !== undefined ? ` ${j.progress.step}/${j.progress.numSteps}` : "";
    const detail = j.state === "completed" ? (j.video ?? "") : j.state === "failed" ? (j.error ?? "") : "";
    return [j.id, `${STATE_LABEL[j.state] ?? j.state}${progress}`, j.kind, String(j.attempts), clip(j.prompt, 40), detail];
  });
  const header = ["ID", "STATE", "KIND", "TRIES", "PROMPT", "VIDEO / ERROR"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  lines.push("", fmt(header), ...rows.map(fmt));
  return lines.join("\n");
}

export async function jobs(argv: JobsArgs): Promise<number> {
  const limit = checkInt(argv.limit, "limit", 1, 100000);
  const { parseRedisUrl } = await import("../jobs/connection.ts");
  try {
    parseRedisUrl(argv.redis);
  } catch (err) {
    throw new UsageError(`--redis: ${(err as Error).message}`);
  }
  const { VideoJobs } = await import("../jobs/producer.ts");
  const q = new VideoJobs({ connection: argv.redis, queue: argv.queue });
  try {
    const [list, counts] = [await q.list({ limit }), await q.counts()];
    if (argv.json) process.stdout.write(`${JSON.stringify({ queue: argv.queue, counts, jobs: list })}\n`);
    else process.stdout.write(`${formatJobs(list, counts)}\n`);
    return EXIT_OK;
  } finally {
    await q.close();
  }
}

export const jobsCommand: CommandModule<GlobalArgs, JobsArgs> = {
  command: "jobs",
  describe: "List the queue's waiting, active, done and failed jobs",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option("redis", { type: "string", demandOption: true, describe: "Redis URL, e.g. redis://127.0.0.1:6379" })
      .option("queue", { type: "string", default: "torchvid", describe: "Queue name" })
      .option("limit", { type: "number", default: 50, describe: "Most jobs shown per state" })
      .option("json", { type: "boolean", default: false, describe: "One JSON object: counts and jobs" })
      .example("$0 jobs --redis redis://127.0.0.1:6379", "What is queued, running, done and failed") as unknown as Argv<JobsArgs>,
  handler: () => {},
};
