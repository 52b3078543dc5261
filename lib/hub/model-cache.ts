/**
 * torchvid's cache of converted model folders: `$TORCHVID_CACHE` or ~/.cache/torchvid, then
 *
 *   models/models--ORG--NAME/<commit>--<variant>--<dtype>/   a model folder (manifest.json, *.pt, ...)
 *
 * A folder appears there only complete: the converter writes a temporary folder next to it, which
 * is renamed into place at the end. A lock per folder makes a second process wait for the first
 * instead of converting twice; a dead process's leftovers are removed by the next one.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { TorchvidError } from "../errors.ts";
import { withLock } from "./lock.ts";

export interface ConvertedKey {
  repo: string;
  commit: string;
  /** The weight variant read ("fp16"), or undefined for the full-precision files. */
  variant?: string;
  /** The dtype the weights are stored in. */
  dtype: string;
}

/** What `hub.json` in each cached folder records (for `torchvid cache list`). */
export interface ConvertedEntry extends ConvertedKey {
  dir: string;
  bytes: number;
  convertedAt?: string;
}

/** `$TORCHVID_CACHE`, else `$XDG_CACHE_HOME/torchvid`, else ~/.cache/torchvid. */
export function torchvidCacheDir(): string {
  return process.env.TORCHVID_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "torchvid");
}

export function convertedDir(key: ConvertedKey, cacheDir = torchvidCacheDir()): string {
  return join(cacheDir, "models", `models--${key.repo.replace("/", "--")}`, `${key.commit}--${key.variant ?? "default"}--${key.dtype}`);
}

export interface ConvertEvents {
  /** Another process is converting this model; this one waits for it. */
  onWait?: (message: string) => void;
  /** A line of the converter's output. */
  onLine?: (line: string) => void;
}

/** Runs tools/convert on `src` into `dst` with the python that has torch; rejects with the converter's last error line. */
async function runConverter(src: string, dst: string, key: ConvertedKey, events: ConvertEvents, python?: string): Promise<void> {
  const { findPythonWithTorch } = await import("../cli/convert.ts");
  const { packageRoot } = await import("../cli/common.ts");
  let found;
  try {
    found = findPythonWithTorch(python);
  } catch (err) {
    const why = (err as Error).message.replace(" or pass --python / set TORCHVID_PYTHON", ", or set TORCHVID_PYTHON to a python3 that has it");
    throw new TorchvidError(
      "ERR_TORCHVID_CONVERT",
      `${key.repo} is converted once into a torchvid model folder, and the converter needs Python 3 with torch >= 1.13 (the CPU build is enough; no diffusers). ${why}`,
      { cause: err },
    );
  }
  const tools = join(packageRoot(), "tools");
  if (!existsSync(join(tools, "convert"))) throw new TorchvidError("ERR_TORCHVID_CONVERT", `The converter is not in this install (${join(tools, "convert")} not found): reinstall torchvid`);
  const args = ["-m", "convert", src, dst, "--dtype", key.dtype, ...(key.variant ? ["--variant", key.variant] : [])];
  const child = spawn(found.python, args, { cwd: tools, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const onData = (d: Buffer) => {
    for (const line of d.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > 20) lines.shift();
      events.onLine?.(line);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code, signal) => res({ code, signal }));
  });
  if (code !== 0) {
    const last = lines.filter((l) => l.startsWith("error:")).at(-1) ?? lines.at(-1) ?? "";
    throw new TorchvidError(
      "ERR_TORCHVID_CONVERT",
      `Converting ${key.repo}@${key.commit.slice(0, 12)} failed (${signal ? `signal ${signal}` : `exit code ${code}`}${last ? `: ${last.replace(/^error:\s*/, "")}` : ""}); nothing was cached, so the next run tries again`,
    );
  }
}

/**
 * The converted model folder for `key`, converting the diffusers checkpoint in `src` first when
 * it is not cached yet. Safe to call from several processes at once.
 */
export async function ensureConverted(src: string, key: ConvertedKey, events: ConvertEvents = {}, options: { python?: string; cacheDir?: string } = {}): Promise<string> {
  const final = convertedDir(key, options.cacheDir);
  const ready = () => existsSync(join(final, "manifest.json"));
  if (ready()) return final;
  return withLock(
    final,
    async () => {
      if (ready()) return final; // the process we waited for made it
      // Leftovers of a run that died (we hold the lock, so nobody is writing them).
      const parent = dirname(final);
      for (const name of existsSync(parent) ? await readdir(parent) : []) {
        if (name.startsWith(`${basename(final)}.tmp-`)) await rm(join(parent, name), { recursive: true, force: true });
      }
      const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
      try {
        await runConverter(src, tmp, key, events, options.python);
        const entry = { repo: key.repo, commit: key.commit, variant: key.variant ?? null, dtype: key.dtype, source: src, convertedAt: new Date().toISOString() };
        await writeFile(join(tmp, "hub.json"), `${JSON.stringify(entry, null, 2)}\n`);
        await rm(final, { recursive: true, force: true }); // a folder without manifest.json is not a model
        await rename(tmp, final);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      return final;
    },
    () => events.onWait?.(`Waiting for another torchvid process that is converting ${key.repo} (${basename(final)})`),
  );
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}

/** Every complete converted model in the cache. */
export async function listConverted(cacheDir = torchvidCacheDir()): Promise<ConvertedEntry[]> {
  const root = join(cacheDir, "models");
  const out: ConvertedEntry[] = [];
  if (!existsSync(root)) return out;
  for (const repoName of (await readdir(root)).sort()) {
    const repoDir = join(root, repoName);
    if (!repoName.startsWith("models--") || !(await stat(repoDir)).isDirectory()) continue;
    for (const name of (await readdir(repoDir)).sort()) {
      const dir = join(repoDir, name);
      if (name.includes(".tmp-") || name.endsWith(".lock") || !existsSync(join(dir, "manifest.json"))) continue;
      let meta: Partial<ConvertedEntry> & { variant?: string | null } = {};
      try {
        meta = JSON.parse(await readFile(join(dir, "hub.json"), "utf8"));
      } catch {}
      const [commit = "", variant = "default", dtype = ""] = name.split("--");
      out.push({
        repo: meta.repo ?? repoName.slice("models--".length).replace("--", "/"),
        commit: meta.commit ?? commit,
        ...((meta.variant ?? (variant === "default" ? undefined : variant)) ? { variant: (meta.variant ?? variant) as string } : {}),
        dtype: meta.dtype ?? dtype,
        dir,
        bytes: await folderBytes(dir),
        ...(meta.convertedAt ? { convertedAt: meta.convertedAt } : {}),
      });
    }
  }
  return out;
}
