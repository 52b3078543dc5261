/**
 * The studio's HTTP API as the page uses it: JSON calls with the token (when the server has one)
 * and the job event stream read with fetch (EventSource cannot send the Authorization header).
 */

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";

export interface Settings {
  prompt?: string;
  negativePrompt?: string;
  numFrames?: number;
  numInferenceSteps?: number;
  width?: number;
  height?: number;
  guidanceScale?: number;
  seed: number;
  scheduler?: string;
  fps: number;
  model?: string;
  strength?: number;
  video?: string;
}

export interface Job {
  id: string;
  kind: "generate" | "upscale";
  state: JobState;
  settings: Settings;
  source?: { file: string; job?: string };
  createdAt: string;
  step: number;
  numSteps: number;
  position: number | null;
  error: string | null;
  video: string | null;
  result?: { width: number; height: number; numFrames: number; fps: number; seconds: number };
}

export interface Preset {
  name: string;
  kind: "generate" | "upscale";
  width: number;
  height: number;
  numFrames?: number;
  numInferenceSteps: number;
  guidanceScale: number;
  strength?: number;
}

export interface Config {
  model: string;
  schedulers: string[];
  presets: Preset[];
  maxQueue: number;
}

export interface StepData {
  step: number;
  numSteps: number;
  elapsedMs: number;
  secondsPerStep: number;
  etaSeconds: number;
}

export interface PreviewData {
  step: number;
  frames: number;
  width: number;
  height: number;
  image: string;
}

export const FINAL: readonly JobState[] = ["done", "failed", "cancelled"];

const TOKEN_KEY = "torchvid-token";

/** Takes `?token=` from the address once (then hides it), keeps it for this tab, and sets the cookie files need. */
export function initToken(): void {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) document.cookie = `torchvid_token=${encodeURIComponent(token)}; path=/files; SameSite=Strict`;
}

function headers(json: boolean): HeadersInit {
  const h: Record<string, string> = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.authorization = `Bearer ${token}`;
  if (json) h["content-type"] = "application/json";
  return h;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, { method, headers: headers(body !== undefined), ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const data = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, data.error ?? `${method} ${path} failed with HTTP ${res.status}`);
  return data as T;
}

export type JobEventHandler = (event: string, data: unknown) => void;

/**
 * Follows `GET /api/jobs/:id/events` until the final state (or `signal`). Reconnects after a
 * dropped connection; the first event of each connection is the job as it is then.
 */
export async function followJob(id: string, onEvent: JobEventHandler, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let finished = false;
    try {
      const res = await fetch(`/api/jobs/${encodeURIComponent(id)}/events`, { headers: headers(false), signal });
      if (!res.ok || !res.body) return;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!data) continue;
          const parsed = JSON.parse(data) as unknown;
          if (event === "state" && FINAL.includes((parsed as Job).state)) finished = true;
          onEvent(event, parsed);
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    if (finished) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
