/**
 * `GET /api/jobs/:id/events` as Server-Sent Events: the job as it is now (`state`), then every
 * position change, step and preview, and the final `state`, after which the stream ends.
 */
import type { FastifyReply } from "fastify";
import { isFinal, type PublicJob } from "./job.ts";
import type { JobEvent } from "./job-events.ts";
import type { Studio } from "./studio.ts";

/** Bytes a stream may have waiting to be sent before previews are skipped for it. */
const MAX_PREVIEW_BACKLOG = 1 << 20;

export function streamJobEvents(studio: Studio, job: PublicJob, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let seq = 0;
  const write = (e: JobEvent) => {
    // A client that does not keep up misses previews (the next one replaces them anyway) rather
    // than the server buffering images for it; steps and states are small and always sent.
    if (e.event === "preview" && res.writableLength > MAX_PREVIEW_BACKLOG) return;
    res.write(`id: ${++seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
  };
  write({ event: "state", data: job });
  if (isFinal(job.state)) {
    res.end();
    return;
  }
  // Comments keep proxies and idle timers from closing a quiet stream (a long queue wait).
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15000);
  const stop = () => {
    clearInterval(keepAlive);
    unsubscribe();
  };
  const unsubscribe = studio.events.subscribe(job.id, (e) => {
    write(e);
    if (e.event === "state" && isFinal((e.data as PublicJob).state)) {
      stop();
      res.end();
    }
  });
  // The response closes when the client goes away (or the stream ended): stop listening then.
  res.on("close", stop);
}
