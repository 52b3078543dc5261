// The digest of the native sources (CMakeLists.txt, src/, binding/) that tells a stale prebuild
// from a current one: scripts/prebuilds.mjs records it, lib/native.ts compares it.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/**
 * sha256 (first 16 hex digits) over CMakeLists.txt, src/ and binding/ of a source tree; null when
 * the tree has no sources.
 * @param {string} root
 * @returns {string | null}
 */
export function sourceHash(root) {
  if (!existsSync(join(root, "CMakeLists.txt")) || !existsSync(join(root, "src")) || !existsSync(join(root, "binding"))) return null;
  const h = createHash("sha256");
  const files = ["CMakeLists.txt", ...["src", "binding"].flatMap((d) => readdirSync(join(root, d)).sort().map((f) => join(d, f)))];
  for (const f of files) {
    if (!statSync(join(root, f)).isFile()) continue;
    h.update(`${f}\0`).update(readFileSync(join(root, f)));
  }
  return h.digest("hex").slice(0, 16);
}
