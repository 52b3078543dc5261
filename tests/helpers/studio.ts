/**
 * What the studio tests share: the page built from web/src, `torchvid serve` started as a user
 * starts it (spawned, URL read from stdout), raw HTTP (paths the client must not normalise),
 * an SSE reader, and headless Chromium through puppeteer-core.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const tinyModel = join(repo, "models", "tiny");

/** Compiles web/src to dist/web when the output is missing or older than a source. */
export function buildWeb(): void {
  const out = join(repo, "dist", "web", "app.js");
  const srcDir = join(repo, "web", "src");
  const newest = Math.max(...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs), statSync(join(repo, "web", "tsconfig.json")).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return;
  const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(repo, "web", "tsconfig.json")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the page failed:\n${r.stdout}${r.stderr}`);
}

export interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  origin: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGINT, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts `torchvid serve --port 0 ...args` and resolves once it printed its URL. */
export function serveCli(args: string[], options: { cwd?: string } = {}): Promise<Served> {
  const child = spawn(process.execPath, [join(repo, "bin", "torchvid.js"), "serve", "--port", "0", ...args], { cwd: options.cwd ?? tmpdir() });
  let stdout = "";
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /torchvid studio: (http:\/\/\S+)/.exec(stdout);
      if (m) {
        const url = m[1];
        resolve({
          child,
          url,
          origin: new URL(url).origin,
          stdout: () => stdout,
          stderr: () => stderr,
          exited,
          stop: async () => {
            if (child.exitCode === null) child.kill("SIGINT");
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`torchvid serve exited with ${code} before printing its URL:\n${stdout}${stderr}`)));
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with the path sent exactly as given (no normalisation of "..", no re-encoding). */
export function raw(origin: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers: options.headers ?? {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export interface SseEvent {
  event: string;
  data: any;
}

/** Reads a job's event stream to its end; resolves with every event in arrival order. */
export async function readEvents(origin: string, id: string, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const res = await fetch(`${origin}/api/jobs/${id}/events`, { headers });
  if (!res.ok || !res.body) throw new Error(`events of ${id}: HTTP ${res.status} ${await res.text()}`);
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => {
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      return { event, data: JSON.parse(data) };
    });
}

export async function json(origin: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${origin}${path}`, {
    method,
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() };
}

/** Polls a job until it is done, failed or cancelled. */
export async function waitFinal(origin: string, id: string, timeoutMs = 60000, headers: Record<string, string> = {}): Promise<any> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await json(origin, "GET", `/api/jobs/${id}`, undefined, headers);
    if (["done", "failed", "cancelled"].includes(body.state)) return body;
    if (Date.now() > end) throw new Error(`job ${id} still ${body.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The Chromium arguments CI uses (Debian's /usr/bin/chromium, headless, no network side trips). */
export function chromiumArgs(userDataDir: string): string[] {
  return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${userDataDir}`];
}

export const CHROMIUM = "/usr/bin/chromium";
