/**
 * The Hugging Face cache layout, exactly as huggingface_hub (Python) and huggingface-cli write it,
 * so one cache serves both:
 *
 *   $HF_HUB_CACHE (or $HF_HOME/hub, or ~/.cache/huggingface/hub)
 *     models--ORG--NAME/
 *       blobs/<etag>                      file contents, named by their ETag (sha256 for LFS files)
 *       refs/<branch or tag>              the commit hash the name pointed to when last resolved
 *       snapshots/<commit>/<path>         relative symlinks into ../../blobs
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { getHFHubCachePath, getRepoFolderName } from "@huggingface/hub";

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** `$HF_HUB_CACHE`, `$HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub` (huggingface_hub's order). */
export function hfHubCacheDir(): string {
  return getHFHubCachePath();
}

/** One repo's folder in the cache: `models--ORG--NAME`. */
export function repoCacheDir(repo: string, cacheDir = hfHubCacheDir()): string {
  return join(cacheDir, getRepoFolderName({ name: repo, type: "model" }));
}

export function snapshotDir(repoDir: string, commit: string): string {
  return join(repoDir, "snapshots", commit);
}

export function blobPath(repoDir: string, etag: string): string {
  return join(repoDir, "blobs", etag);
}

/** The commit a revision stands for in the cache (a commit hash stands for itself), or null. */
export async function cachedCommit(repoDir: string, revision: string): Promise<string | null> {
  if (COMMIT_HASH.test(revision)) return existsSync(snapshotDir(repoDir, revision)) ? revision : null;
  try {
    const commit = (await readFile(join(repoDir, "refs", revision), "utf8")).trim();
    return COMMIT_HASH.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

/** Records that `revision` (a branch or tag) resolved to `commit`, as huggingface_hub does. */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (COMMIT_HASH.test(revision) || revision === commit) return;
  const ref = join(repoDir, "refs", revision);
  await mkdir(dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  await writeFile(tmp, commit);
  await rename(tmp, ref);
}

/**
 * Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink (huggingface_hub's
 * layout). The link is made under a temporary name and renamed, so it never dangles half-made.
 */
export async function linkSnapshotFile(repoDir: string, commit: string, path: string, etag: string): Promise<string> {
  const pointer = join(snapshotDir(repoDir, commit), path);
  await mkdir(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.link`;
  await rm(tmp, { force: true });
  await symlink(relative(dirname(pointer), blobPath(repoDir, etag)), tmp);
  await rename(tmp, pointer);
  return pointer;
}

/** Python's huggingface_hub stores ETags without quotes and without the weak-validator prefix. */
export function normaliseEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}
