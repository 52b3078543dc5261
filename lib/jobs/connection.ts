/**
 * Redis connections for the job queue: a `redis://` URL or BullMQ's own connection options, and
 * one quick reachability check at start. ioredis (under BullMQ) retries a refused connection
 * forever, which is right once running (Redis restarts, the worker reconnects, nothing is lost)
 * but wrong at start: a typo in --redis would hang silently. So the first contact is a single
 * attempt with a short timeout, and its failure names the URL.
 */
import { Queue, type ConnectionOptions } from "bullmq";
import { TorchvidError } from "../errors.ts";

/** A Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS) or BullMQ connection options. */
export type RedisConnectionInput = string | ConnectionOptions;

/** What `parseRedisUrl` makes of a URL: plain ioredis options. */
export interface RedisUrlOptions {
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
}

/** Parses `redis://` / `rediss://` URLs; throws a RangeError naming the URL and the expected form. */
export function parseRedisUrl(url: string): RedisUrlOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RangeError(`Not a Redis URL: ${JSON.stringify(url)}; expected redis://host:port (e.g. redis://127.0.0.1:6379)`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new RangeError(`Not a Redis URL: ${JSON.stringify(url)} (scheme ${parsed.protocol}); expected redis://host:port or rediss://host:port`);
  }
  const options: RedisUrlOptions = { host: parsed.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1", port: parsed.port ? Number(parsed.port) : 6379 };
  const db = parsed.pathname.replace(/^\//, "");
  if (db !== "") {
    if (!/^\d+$/.test(db)) throw new RangeError(`Redis URL ${redactUrl(url)} names database ${JSON.stringify(db)}; the path must be a database number, e.g. redis://host:6379/0`);
    options.db = Number(db);
  }
  if (parsed.username) options.username = decodeURIComponent(parsed.username);
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === "rediss:") options.tls = {};
  return options;
}

/** The URL with its password replaced by `***`, safe for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/** BullMQ connection options for `input`, and how to name it in messages. */
export function resolveConnection(input: RedisConnectionInput): { options: ConnectionOptions; label: string } {
  if (typeof input === "string") return { options: parseRedisUrl(input), label: redactUrl(input) };
  const o = input as { host?: string; port?: number; options?: { host?: string; port?: number } };
  const host = o.host ?? o.options?.host ?? "127.0.0.1";
  const port = o.port ?? o.options?.port ?? 6379;
  return { options: input, label: `redis://${host}:${port}` };
}

/**
 * Reconnects soon after Redis comes back: ioredis under BullMQ backs off up to 20 s by default,
 * and a worker that waits longer than its job lock loses the running job to the stalled check.
 * A caller's own client instance or retryStrategy is kept as it is.
 */
export function withQuickReconnect(options: ConnectionOptions): ConnectionOptions {
  if (typeof (options as { duplicate?: unknown }).duplicate === "function" || (options as { retryStrategy?: unknown }).retryStrategy) return options;
  return { ...(options as object), retryStrategy: (times: number) => Math.min(250 * times, 2000) } as ConnectionOptions;
}

/**
 * Connects once (no retries, `timeoutMs` at most) and throws ERR_TORCHVID_QUEUE naming `label`
 * and the fix when Redis cannot be reached. Only for plain options: a caller's own client
 * instance keeps the caller's retry policy.
 */
export async function checkRedisReachable(options: ConnectionOptions, label: string, timeoutMs = 5000): Promise<void> {
  if (typeof (options as { duplicate?: unknown }).duplicate === "function") return;
  const probe = new Queue("torchvid-probe", {
    connection: { ...(options as object), retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: true, lazyConnect: false, maxRetriesPerRequest: 0 },
  });
  let lastError: unknown;
  probe.on("error", (err) => (lastError = err));
  const timeout = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 500).unref();
  });
  try {
    const client = await Promise.race([probe.client, timeout]);
    await Promise.race([(client as unknown as { ping(): Promise<string> }).ping(), timeout]);
  } catch (err) {
    const cause = lastError ?? err;
    const why = (cause instanceof Error ? cause.message : String(cause)).replace(/[.\s]+$/, "");
    throw new TorchvidError(
      "ERR_TORCHVID_QUEUE",
      `Cannot reach Redis at ${label}: ${why}. Start Redis there (e.g. \`redis-server --port ${portOf(options)}\`) or pass the right --redis URL`,
      { cause },
    );
  } finally {
    await probe.close().catch(() => {});
  }
}

function portOf(options: ConnectionOptions): number {
  return (options as { port?: number }).port ?? 6379;
}
