/** What the page knows: every job it has seen, the event streams it follows, and what the "now" panel shows. */
import type { Job } from "./api.js";

export const jobs = new Map<string, Job>();
export const following = new Map<string, AbortController>();

export const view = {
  /** The job the "now" panel shows: the running one, else the last one queued from this page. */
  currentId: null as string | null,
  lastSubmitted: null as string | null,
};
