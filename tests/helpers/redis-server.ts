/**
 * A real redis-server (Debian's package) for the job-queue tests: a random loopback port, a temp
 * folder, no snapshots. With `appendOnly` every write is fsynced to an append-only file, so a
 * restart on the same port and folder (`restart()`) comes back with every job, as a production
 * Redis with persistence would.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_SERVER = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => existsSync(p)) ?? (spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim() || undefined);

/** Why the Redis tests cannot run here, or undefined. */
export const redisMissing: string | undefined = REDIS_SERVER ? undefined : "redis-server not installed (apt-get install redis-server; scripts/setup.sh does it)";

export interface RedisServer {
  url: string;
  port: number;
  /** Stops Redis (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it, then removes its folder. */
  dispose(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function startRedis(options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error(redisMissing);
  const dir = mkdtempSync(join(tmpdir(), "torchvid-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = "";
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no",
    "--maxmemory-policy", "noeviction", "--loglevel", "warning",
    ...(options.appendOnly ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
  ];
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(REDIS_SERVER!, args, { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.on("data", (d) => (log += d));
      child.stderr!.on("data", (d) => (log += d));
      const started = Date.now();
      while (!(await canConnect(port))) {
        if (child.exitCode !== null || Date.now() - started > 10_000) throw new Error(`redis-server did not start on port ${port}: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await exited;
    },
    async dispose() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
