/**
 * `torchvid serve`: the studio's HTTP server (fastify). The API (fixed contract, README "Studio"):
 *   POST /api/generate, POST /api/upscale -> 202 {id}; GET /api/jobs; GET /api/jobs/:id;
 *   GET /api/jobs/:id/events (SSE); DELETE /api/jobs/:id; GET /api/config.
 * Results under /files/<name> (only files in --out), the page under / (only its own assets).
 * Errors are `{error}` with the status: 400 bad input, 401 token, 404, 409, 415, 429 queue full.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import lockfile from "proper-lockfile";
import { SCHEDULER_NAMES } from "../index.ts";
import { Downloads } from "./downloads.ts";
import { QueueFullError } from "./job-queue.ts";
import { fileInOut, isSafeFileName, pageRoots } from "./paths.ts";
import { installGuards } from "./security.ts";
import { streamJobEvents } from "./sse.ts";
import { RequestError, Studio, type StudioOptions } from "./studio.ts";

export interface ServerOptions extends StudioOptions {
  /** Interface to bind. Defaults to 127.0.0.1. Any non-loopback address needs `token`. */
  host?: string;
  /** Port; 0 picks a free one. Defaults to 7860. */
  port?: number;
  /** Required on every /api call as `Authorization: Bearer <token>`. */
  token?: string;
  /** fastify's request log. Defaults to off. */
  logger?: boolean;
}

export interface RunningStudio {
  app: FastifyInstance;
  studio: Studio;
  /** http://host:port/ (with `?token=` when a token is set, so the printed link just works). */
  url: string;
  /** The bound address without the token. */
  origin: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

/** Presets the page offers (README "Studio"). */
export const PRESETS = [
  { name: "ms-1.7b 256²", kind: "generate", width: 256, height: 256, numFrames: 16, numInferenceSteps: 25, guidanceScale: 9 },
  { name: "zeroscope 576x320", kind: "generate", width: 576, height: 320, numFrames: 24, numInferenceSteps: 40, guidanceScale: 12.5 },
  { name: "XL 1024x576 upscale", kind: "upscale", width: 1024, height: 576, numInferenceSteps: 40, guidanceScale: 12.5, strength: 0.6 },
  { name: "tiny 32² (test model)", kind: "generate", width: 32, height: 32, numFrames: 4, numInferenceSteps: 4, guidanceScale: 9 },
] as const;

export function checkServerOptions(options: Pick<ServerOptions, "host" | "token" | "port">): void {
  const host = options.host ?? "127.0.0.1";
  if (options.token !== undefined && (typeof options.token !== "string" || options.token.length < 8 || /\s/.test(options.token))) {
    throw new RangeError("--token must be at least 8 characters without spaces, e.g. --token $(openssl rand -hex 16)");
  }
  if (!LOOPBACK.has(host) && options.token === undefined) {
    throw new RangeError(`--host ${host} would open the studio to other machines: add --token T (every API call must then send \`Authorization: Bearer T\`), or leave --host out to serve 127.0.0.1 only`);
  }
  const port = options.port ?? 7860;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`--port must be an integer from 0 to 65535 but received ${port}`);
}

export async function startStudio(options: ServerOptions): Promise<RunningStudio> {
  checkServerOptions(options);
  const host = options.host ?? "127.0.0.1";
  const roots = pageRoots();
  const release = await lockOut(options.outDir, options.warn);
  let studio: Studio;
  try {
    studio = new Studio(options);
  } catch (err) {
    await release();
    throw err;
  }
  const downloads = new Downloads(studio.outDir);
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 256 * 1024 });

  installGuards(app, { ...(options.token !== undefined ? { token: options.token } : {}), loopbackOnly: LOOPBACK.has(host) });

  // Every error is {error}; fastify's own (bad JSON, wrong content type, body too large) keep their status.
  const warn = options.warn ?? ((m: string) => console.warn(`torchvid studio: ${m}`));
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof QueueFullError) return reply.code(429).send({ error: err.message });
    if (err instanceof RequestError) return reply.code(400).send({ error: err.message });
    const status = typeof err.statusCode === "number" && err.statusCode >= 400 ? err.statusCode : 500;
    if (status === 500) warn(`${request.method} ${request.url.split("?")[0]} failed: ${err.stack ?? err.message}`);
    let message = err.message;
    if (err.code === "FST_ERR_CTP_INVALID_JSON_BODY" || (status === 400 && /JSON/.test(message))) message = `The body is not valid JSON (${err.message}): send a JSON object such as {"prompt": "a corgi on the beach"}`;
    if (err.code === "FST_ERR_CTP_EMPTY_JSON_BODY") message = 'The body is empty: send a JSON object such as {"prompt": "a corgi on the beach"}';
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") message = "Send the body as JSON with the header Content-Type: application/json";
    return reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `Nothing at ${request.method} ${request.url.split("?")[0]}` }));

  await app.register(fastifyStatic, { root: roots, prefix: "/", wildcard: true, index: "index.html", dotfiles: "deny", cacheControl: false });

  // ---- API -------------------------------------------------------------------------------
  app.get("/api/config", async () => ({
    model: studio.pipelines.defaultModel,
    device: options.device ?? null,
    schedulers: Object.keys(SCHEDULER_NAMES),
    presets: PRESETS,
    limits: studio.limits,
    maxQueue: studio.queue.limit,
  }));

  app.post("/api/generate", async (request, reply) => {
    const job = await studio.submitGenerate(request.body);
    return reply.code(202).send({ id: job.id });
  });

  app.post("/api/upscale", async (request, reply) => {
    const job = await studio.submitUpscale(request.body);
    return reply.code(202).send({ id: job.id });
  });

  app.get("/api/jobs", async () => ({ jobs: studio.list() }));

  app.get<{ Params: { id: string } }>("/api/jobs/:id", async (request, reply) => {
    const job = studio.get(request.params.id);
    if (!job) return reply.code(404).send({ error: `No job ${JSON.stringify(request.params.id)}: GET /api/jobs lists the jobs` });
    return job;
  });

  app.get<{ Params: { id: string } }>("/api/jobs/:id/events", async (request, reply) => {
    const job = studio.get(request.params.id);
    if (!job) return reply.code(404).send({ error: `No job ${JSON.stringify(request.params.id)}: GET /api/jobs lists the jobs` });
    streamJobEvents(studio, job, reply);
  });

  app.delete<{ Params: { id: string } }>("/api/jobs/:id", async (request, reply) => {
    const outcome = studio.cancel(request.params.id);
    if (!outcome) return reply.code(404).send({ error: `No job ${JSON.stringify(request.params.id)}: GET /api/jobs lists the jobs` });
    if (outcome.status === "final") return reply.code(409).send({ error: `Job ${outcome.job.id} is already ${outcome.job.state}: only queued or running jobs can be cancelled` });
    // A queued job is cancelled at once; a running one stops at its next step (watch its events).
    return reply.code(outcome.status === "cancelled" ? 200 : 202).send(outcome.job);
  });

  // ---- results ---------------------------------------------------------------------------
  app.get<{ Params: { name: string }; Querystring: { download?: string } }>("/files/:name", async (request, reply) => {
    const { name } = request.params;
    if (!isSafeFileName(name) || fileInOut(studio.outDir, name) === null) {
      return reply.code(400).send({ error: `${JSON.stringify(name)} is not a file name in the output folder` });
    }
    if (!(await downloads.ensure(name))) return reply.code(404).send({ error: `No file ${name} in the output folder` });
    if (request.query.download !== undefined) reply.header("content-disposition", `attachment; filename="${name}"`);
    return reply.sendFile(name, studio.outDir, { dotfiles: "deny", cacheControl: false });
  });

  try {
    await app.listen({ host, port: options.port ?? 7860 });
  } catch (err) {
    await studio.close();
    await release();
    if ((err as { code?: string }).code === "EADDRINUSE") throw new RangeError(`Port ${options.port ?? 7860} on ${host} is in use: pass another --port (0 picks a free one)`);
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port ?? 7860;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const origin = `http://${shownHost}:${port}`;
  return {
    app,
    studio,
    origin,
    url: `${origin}/${options.token !== undefined ? `?token=${encodeURIComponent(options.token)}` : ""}`,
    close: async () => {
      await studio.close();
      await app.close();
      await release();
    },
  };
}

/**
 * One server per --out: two would both re-queue and run the same waiting jobs. The lock is a
 * folder `.studio.lock` inside --out, refreshed while the server runs and stale after 30 s (a
 * server that was killed does not block the next start for longer).
 */
async function lockOut(outDir: string, warn?: (message: string) => void): Promise<() => Promise<void>> {
  mkdirSync(outDir, { recursive: true });
  try {
    const release = await lockfile.lock(outDir, {
      lockfilePath: join(outDir, ".studio.lock"),
      stale: 30000,
      update: 10000,
      realpath: false,
      // Never crash the server over its lock: say so and keep serving.
      onCompromised: (err) => (warn ?? console.warn)(`the lock on ${outDir} was lost (${err.message}); another server may now use it`),
    });
    return () => release().catch(() => {});
  } catch (err) {
    if ((err as { code?: string }).code === "ELOCKED") {
      throw new RangeError(`Another torchvid serve is using --out ${outDir}: stop it, or pass another --out`);
    }
    throw err;
  }
}
