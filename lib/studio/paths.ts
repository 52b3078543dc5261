/**
 * Names the studio accepts for jobs and files, and where the page's own assets live. Every file
 * the server sends goes through these checks: nothing outside --out and the page's assets.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Job ids: time-ordered base36 millis + random hex, lowercase letters and digits only. */
const JOB_ID = /^[a-z0-9]{8,40}$/;
/** File names in --out: one path segment, no leading dot, no "..". */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function newJobId(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString("hex")}`;
}

export function isJobId(value: unknown): value is string {
  return typeof value === "string" && JOB_ID.test(value);
}

export function isSafeFileName(name: unknown): name is string {
  return typeof name === "string" && FILE_NAME.test(name) && !name.includes("..");
}

/** The absolute path of `name` inside `outDir`, or null when `name` is not a plain file name there. */
export function fileInOut(outDir: string, name: string): string | null {
  if (!isSafeFileName(name)) return null;
  const root = resolve(outDir);
  const path = resolve(root, name);
  return dirname(path) === root && basename(path) === name ? path : null;
}

/** The URL path of a file in --out. */
export function fileUrl(name: string): string {
  return `/files/${encodeURIComponent(name)}`;
}

/** The package root (the folder with package.json), from lib/studio/ or dist/studio/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("torchvid studio: cannot find the package root (package.json) above " + fileURLToPath(import.meta.url));
}

/**
 * Folders holding the page: web/public (HTML, CSS, written by hand) and dist/web (the page's
 * TypeScript compiled by `npm run build:web`). Throws with the fix when the build is missing.
 */
export function pageRoots(): string[] {
  const root = packageRoot();
  const roots = [join(root, "web", "public"), join(root, "dist", "web")];
  if (!existsSync(join(roots[0], "index.html"))) throw new Error(`torchvid studio: the page is missing (${join(roots[0], "index.html")}); reinstall torchvid`);
  if (!existsSync(join(roots[1], "app.js"))) {
    throw new Error(`torchvid studio: the page's script is not built (${join(roots[1], "app.js")} is missing): run \`npm run build:web\``);
  }
  return roots;
}
