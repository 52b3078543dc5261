/**
 * Puts the files a diffusers text-to-video checkpoint needs into the Hugging Face cache and
 * returns its snapshot folder. Downloads go through @huggingface/hub (modelInfo for the commit,
 * listFiles for the file list, fileDownloadInfo + downloadFile for the bytes); this file only
 * decides what to fetch and where it lands.
 *
 * Every blob is written to `blobs/<etag>.incomplete` and renamed only once its size (and, for LFS
 * files, its sha256) match, so nothing that looks complete is ever half-written. A dropped
 * connection resumes from the bytes already there (a Range request), in this process up to
 * RETRIES times, and in the next run after that.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { downloadFile, fileDownloadInfo, listFiles, modelInfo } from "@huggingface/hub";
import { AbortError } from "../errors.ts";
import { MissingCheckpointFile, planCheckpointFiles, shardsOfIndex } from "./checkpoint-files.ts";
import { HubError, toHubError } from "./errors.ts";
import { blobPath, cachedCommit, COMMIT_HASH, hfHubCacheDir, linkSnapshotFile, normaliseEtag, repoCacheDir, snapshotDir, writeRef } from "./hf-cache.ts";
import { withLock } from "./lock.ts";
import { hubEndpoint, hubOffline, hubToken } from "./settings.ts";

/** Bytes so far, over all files of this download. */
export interface DownloadProgress {
  repo: string;
  /** The file being written (repo-relative path). */
  file: string;
  fileBytes: number;
  fileTotal: number;
  /** Bytes downloaded so far in this run, all files (files already cached are not counted). */
  bytes: number;
  totalBytes: number;
  /** Files fetched or found, of totalFiles. */
  files: number;
  totalFiles: number;
}

export interface DownloadOptions {
  /** Branch, tag or commit. Defaults to "main". */
  revision?: string;
  /** Weight variant, e.g. "fp16": fetches `*.fp16.safetensors` instead of the full-precision weights. */
  variant?: string;
  /** Access token for private or gated repos. Defaults to HF_TOKEN or the saved login token. */
  token?: string;
  /** Hub URL. Defaults to HF_ENDPOINT or https://huggingface.co. */
  hubUrl?: string;
  /** Only the local cache, never the network. Defaults to HF_HUB_OFFLINE. */
  offline?: boolean;
  /** The Hugging Face cache folder. Defaults to HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub. */
  cacheDir?: string;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface Snapshot {
  repo: string;
  commit: string;
  /** snapshots/<commit> in the Hugging Face cache: a diffusers checkpoint folder. */
  dir: string;
}

const RETRIES = 3;
const PROGRESS_EVERY_MS = 100;

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError("Download interrupted");
}

/** Is every needed file of `commit` already in the cache? Returns the missing one, or null. */
async function firstMissing(repoDir: string, commit: string, variant?: string): Promise<{ file: string; error?: MissingCheckpointFile } | null> {
  const dir = snapshotDir(repoDir, commit);
  const present = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    const { readdir } = await import("node:fs/promises");
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path);
      else if (existsSync(join(dir, path))) present.add(path); // existsSync follows the link: a dangling one is missing
    }
  };
  if (!existsSync(dir)) return { file: "(no snapshot)" };
  await walk("");
  let plan;
  try {
    plan = planCheckpointFiles(present, variant);
  } catch (err) {
    if (err instanceof MissingCheckpointFile) return { file: err.path, error: err };
    throw err;
  }
  for (const index of plan.indexes) {
    for (const shard of shardsOfIndex(index, JSON.parse(await readFile(join(dir, index), "utf8")))) if (!present.has(shard)) return { file: shard };
  }
  return null;
}

/** The snapshot of `repo` at `revision` from the cache alone (HF_HUB_OFFLINE), or a HubError that says what is missing. */
export async function cachedSnapshot(repo: string, options: DownloadOptions = {}): Promise<Snapshot> {
  const cacheDir = options.cacheDir ?? hfHubCacheDir();
  const repoDir = repoCacheDir(repo, cacheDir);
  const revision = options.revision ?? "main";
  const commit = await cachedCommit(repoDir, revision);
  const id = `${repo}${options.revision ? `@${options.revision}` : ""}`;
  if (!commit) {
    throw new HubError(
      `${id} is not in the Hugging Face cache (${repoDir}) and HF_HUB_OFFLINE is set: download it once online (\`torchvid pull ${id}\`, or unset HF_HUB_OFFLINE), or set HF_HUB_CACHE to the cache that has it`,
      repo,
    );
  }
  const missing = await firstMissing(repoDir, commit, options.variant);
  if (missing) {
    throw new HubError(
      `${id} is in the Hugging Face cache but incomplete (commit ${commit.slice(0, 12)} lacks ${missing.file}${missing.error?.hint ? `; ${missing.error.hint}` : ""}) and HF_HUB_OFFLINE is set: run \`torchvid pull ${id}${options.variant ? ` --variant ${options.variant}` : ""}\` online to finish it`,
      repo,
      missing.file,
    );
  }
  return { repo, commit, dir: snapshotDir(repoDir, commit) };
}

/** No byte for this long: the connection is dead even if no error says so; resume on a new one. */
const STALL_MS = Number(process.env.TORCHVID_HUB_STALL_MS) || 60_000;

async function readOrStall(reader: ReadableStreamDefaultReader<Uint8Array>, path: string): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TypeError(`terminated: no data for ${STALL_MS / 1000} s while downloading ${path}`)), STALL_MS);
  });
  try {
    return await Promise.race([reader.read(), stall]);
  } finally {
    clearTimeout(timer);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

interface FetchContext {
  repo: string;
  commit: string;
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
  onBytes: (file: string, fileBytes: number, fileTotal: number, delta: number) => void;
}

/**
 * Downloads one file into blobs/<etag> (resuming blobs/<etag>.incomplete) and links it into the
 * snapshot. Retries a dropped connection from where it stopped.
 */
async function fetchFile(repoDir: string, path: string, ctx: FetchContext): Promise<void> {
  const hubErr = (err: unknown) => toHubError(err, { repo: ctx.repo, revision: ctx.commit.slice(0, 12), file: path, endpoint: ctx.endpoint, hasToken: !!ctx.token });
  const common = { repo: ctx.repo, path, revision: ctx.commit, hubUrl: ctx.endpoint, ...(ctx.token ? { accessToken: ctx.token } : {}) };
  let info;
  try {
    info = await fileDownloadInfo(common);
  } catch (err) {
    throw hubErr(err);
  }
  if (!info) throw new HubError(`${ctx.repo}@${ctx.commit.slice(0, 12)}, file ${path}: not found (404) although the repo lists it: try again, the repo may be changing`, ctx.repo, path, 404);
  const etag = normaliseEtag(info.etag);
  const blob = blobPath(repoDir, etag);
  if ((await sizeOf(blob)) === info.size && existsSync(blob)) {
    await linkSnapshotFile(repoDir, ctx.commit, path, etag);
    ctx.onBytes(path, info.size, info.size, 0);
    return;
  }
  await mkdir(dirname(blob), { recursive: true });
  const incomplete = `${blob}.incomplete`;
  let lastError: unknown;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    throwIfAborted(ctx.signal);
    let have = await sizeOf(incomplete);
    if (have > info.size) {
      await rm(incomplete, { force: true });
      have = 0;
    }
    if (have < info.size) {
      try {
        const remote = await downloadFile({ ...common, downloadInfo: info });
        if (!remote) throw new HubError(`${ctx.repo}, file ${path}: not found (404)`, ctx.repo, path, 404);
        // A Range request for what is missing: a resumed download fetches only the rest.
        const reader = remote.slice(have).stream().getReader();
        const out = createWriteStream(incomplete, { flags: "a" });
        const closed = new Promise<void>((res, rej) => {
          out.on("close", res);
          out.on("error", rej);
        });
        try {
          ctx.onBytes(path, have, info.size, 0);
          for (;;) {
            throwIfAborted(ctx.signal);
            const { done, value } = await readOrStall(reader, path);
            if (done) break;
            if (!out.write(value)) await new Promise<void>((r) => out.once("drain", () => r()));
            have += value.byteLength;
            ctx.onBytes(path, have, info.size, value.byteLength);
            // Every byte is here: do not wait for the end of the stream (a stream that never
            // closes after its last byte must not hang the download).
            if (have >= info.size) {
              reader.cancel().catch(() => {});
              break;
            }
          }
        } catch (err) {
          reader.cancel().catch(() => {});
          throw err;
        } finally {
          out.end();
          await closed;
        }
      } catch (err) {
        lastError = err;
        if (ctx.signal?.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new AbortError("Download interrupted");
        const converted = hubErr(typeof err === "string" ? new TypeError(`terminated: ${err}`) : err);
        // A refusal (401/403/404) will not change on retry; a dropped connection may.
        if (converted instanceof HubError && converted.status !== undefined && converted.status < 500) throw converted;
        continue;
      }
    }
    // Complete? Check before the rename: only a verified blob gets its final name.
    const size = await sizeOf(incomplete);
    if (size !== info.size) continue;
    if (/^[0-9a-f]{64}$/.test(etag) && (await sha256File(incomplete)) !== etag) {
      await rm(incomplete, { force: true });
      lastError = new Error(`the downloaded bytes do not match the file's sha256 ${etag}`);
      continue;
    }
    await rename(incomplete, blob);
    await linkSnapshotFile(repoDir, ctx.commit, path, etag);
    return;
  }
  const converted = hubErr(typeof lastError === "string" ? new TypeError(`terminated: ${lastError}`) : lastError);
  const reason = converted instanceof HubError ? converted.message : `${ctx.repo}, file ${path}: ${(lastError as Error)?.message ?? lastError}`;
  throw new HubError(
    `${reason} (gave up after ${RETRIES + 1} tries; ${await sizeOf(incomplete)} of ${info.size} bytes are kept in ${incomplete}, and the next run resumes from there)`,
    ctx.repo,
    path,
    converted instanceof HubError ? converted.status : undefined,
    { cause: lastError },
  );
}

/**
 * The checkpoint of `repo` in the Hugging Face cache, downloading what is missing. With
 * HF_HUB_OFFLINE (or `offline`) only the cache is used.
 */
export async function downloadCheckpoint(repo: string, options: DownloadOptions = {}): Promise<Snapshot> {
  if (hubOffline(options.offline)) return cachedSnapshot(repo, options);
  const cacheDir = options.cacheDir ?? hfHubCacheDir();
  const repoDir = repoCacheDir(repo, cacheDir);
  const endpoint = hubEndpoint(options.hubUrl);
  const token = hubToken(options.token);
  const revision = options.revision ?? "main";
  const ctxFor = (file?: string) => ({ repo, revision: options.revision, file, endpoint, hasToken: !!token });
  const auth = token ? { accessToken: token } : {};

  // 1. The commit the revision points at now (a commit hash needs no lookup when it is cached).
  let commit: string;
  if (COMMIT_HASH.test(revision) && !(await firstMissing(repoDir, revision, options.variant))) {
    return { repo, commit: revision, dir: snapshotDir(repoDir, revision) };
  }
  try {
    const info = await modelInfo({ name: repo, revision, hubUrl: endpoint, additionalFields: ["sha"], ...auth });
    commit = info.sha;
  } catch (err) {
    const hubErr = toHubError(err, ctxFor());
    // No network but the files are here: use them, as huggingface_hub does.
    if (hubErr instanceof HubError && hubErr.status === undefined) {
      const cached = await cachedSnapshot(repo, options).catch(() => null);
      if (cached) return cached;
    }
    throw hubErr;
  }
  if (!COMMIT_HASH.test(commit ?? "")) throw new HubError(`${repo}: the Hub did not say which commit ${revision} is (got ${JSON.stringify(commit)}): check HF_ENDPOINT`, repo);

  // One downloader per repo at a time (another torchvid process waits here, then finds the files).
  const lockPath = join(cacheDir, ".locks", repoDir.split(/[\\/]/).at(-1)!, "torchvid-download");
  return withLock(lockPath, async () => {
    await writeRef(repoDir, revision, commit);
    if (!(await firstMissing(repoDir, commit, options.variant))) return { repo, commit, dir: snapshotDir(repoDir, commit) };

    // 2. What the pipeline needs, from the repo's file list at that commit.
    const sizes = new Map<string, number>();
    try {
      for await (const entry of listFiles({ repo, revision: commit, recursive: true, hubUrl: endpoint, ...auth })) {
        if (entry.type === "file") sizes.set(entry.path, entry.lfs?.size ?? entry.size);
      }
    } catch (err) {
      throw toHubError(err, ctxFor());
    }
    let plan;
    try {
      plan = planCheckpointFiles(new Set(sizes.keys()), options.variant);
    } catch (err) {
      if (err instanceof MissingCheckpointFile) {
        throw new HubError(`${repo}${options.revision ? `@${options.revision}` : ""}: ${err.message}`, repo, err.path, undefined, { cause: err });
      }
      throw err;
    }

    // 3. Fetch, with progress over all bytes.
    const queue = [...plan.files];
    const progress: DownloadProgress = { repo, file: "", fileBytes: 0, fileTotal: 0, bytes: 0, totalBytes: 0, files: 0, totalFiles: queue.length };
    const isCached = (f: string) => existsSync(join(snapshotDir(repoDir, commit), f));
    for (const f of queue) if (!isCached(f)) progress.totalBytes += sizes.get(f) ?? 0;
    let lastReport = 0;
    const ctx: FetchContext = {
      repo,
      commit,
      endpoint,
      ...(token ? { token } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onBytes: (file, fileBytes, fileTotal, delta) => {
        Object.assign(progress, { file, fileBytes, fileTotal });
        progress.bytes += delta;
        const now = Date.now();
        if (fileBytes === fileTotal || now - lastReport >= PROGRESS_EVERY_MS) {
          lastReport = now;
          options.onProgress?.({ ...progress });
        }
      },
    };
    for (let i = 0; i < queue.length; i++) {
      const file = queue[i]!;
      throwIfAborted(options.signal);
      if (!isCached(file)) await fetchFile(repoDir, file, ctx);
      progress.files++;
      if (plan.indexes.includes(file)) {
        // Sharded weights: the index names the shards.
        const shards = shardsOfIndex(file, JSON.parse(await readFile(join(snapshotDir(repoDir, commit), file), "utf8")));
        for (const s of shards) {
          if (!sizes.has(s)) throw new HubError(`${repo}: ${file} names the shard ${s}, which the repo does not have: the checkpoint is broken; pick another revision`, repo, s);
          if (!isCached(s)) progress.totalBytes += sizes.get(s) ?? 0;
        }
        queue.push(...shards);
        progress.totalFiles += shards.length;
      }
    }
    options.onProgress?.({ ...progress });
    return { repo, commit, dir: snapshotDir(repoDir, commit) };
  });
}
