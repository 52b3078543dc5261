#!/usr/bin/env bash
# Packs what bench/gpu/run.sh needs on the GPU machine (no Node, no npm, no network there) into
# .cache/gpu/ (git-ignored), to be carried by the device tool (64 MiB per call in all, working
# tree included):
#   .cache/gpu/node.xz                 this machine's node binary (xz), unpacked by run.sh
#   .cache/gpu/node_modules.tar.xz     the run-time closure of node_modules: cmake-js,
#                                      node-addon-api, node-api-headers, node-gyp-build, prebuildify,
#                                      tsx (+ esbuild's linux binary), yargs, cli-progress, sharp
#                                      (+ its libvips) and their dependencies. Not typescript, not
#                                      @types, not @ffmpeg-installer (66 MB; mp4 export is unused by
#                                      the benchmark; webp/gif/png go through sharp).
# Prints the sizes and the total the device tool will move (working tree + these), and fails
# when that is over 64 MiB.
# Usage: bash bench/gpu/pack.sh        (NODE=/path/to/node to pack another node binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.cache/gpu
mkdir -p "$out"
node_bin=${NODE:-$(command -v node)}
node_bin=$(readlink -f "$node_bin")

if [[ ! -s $out/node.xz || $node_bin -nt $out/node.xz || ! -s $out/node.version ]] || [[ $(cat "$out/node.version") != "$("$node_bin" --version)" ]]; then
  echo "pack: xz $node_bin ($("$node_bin" --version)) ..."
  xz -T2 -6 -c "$node_bin" >"$out/node.xz.tmp"
  mv "$out/node.xz.tmp" "$out/node.xz"
  "$node_bin" --version >"$out/node.version"
fi

# The dependency closure of the run-time roots, as folders relative to the repo root. Resolution
# walks up node_modules folders like Node does; optional dependencies count only when installed
# (so esbuild's and sharp's binaries for this platform, not the others).
"$node_bin" - >"$out/modules.txt" <<'EOF'
const { existsSync, readFileSync } = require("node:fs");
const { dirname, join, relative } = require("node:path");
const root = process.cwd();
const roots = ["cmake-js", "node-addon-api", "node-api-headers", "node-gyp-build", "prebuildify", "tsx", "yargs", "cli-progress", "sharp"];
const seen = new Set();
function resolveFrom(fromDir, name) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === root || dir === dirname(dir)) return null;
  }
}
function visit(fromDir, name, optional) {
  const dir = resolveFrom(fromDir, name);
  if (!dir) {
    if (!optional) throw new Error(`pack: ${name} (needed from ${relative(root, fromDir) || "."}) is not installed: run npm ci`);
    return;
  }
  if (seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dir, dep, false);
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dir, dep, true);
  for (const dep of Object.keys(pkg.peerDependencies ?? {})) visit(dir, dep, true);
}
for (const name of roots) visit(root, name, false);
// A nested folder is inside its parent's: list only the outermost.
const dirs = [...seen].map((d) => relative(root, d)).sort();
const top = dirs.filter((d) => !dirs.some((p) => p !== d && d.startsWith(`${p}/`)));
process.stdout.write(top.join("\n") + "\n");
EOF
echo "pack: $(wc -l <"$out/modules.txt") packages in the node_modules closure"
tar -C . -cf - -T "$out/modules.txt" | xz -T2 -6 >"$out/node_modules.tar.xz.tmp"
mv "$out/node_modules.tar.xz.tmp" "$out/node_modules.tar.xz"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
node_size=$(stat -c %s "$out/node.xz")
mods_size=$(stat -c %s "$out/node_modules.tar.xz")
# What the device tool copies besides the carried paths: tracked files + untracked, not ignored.
tree_size=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
total=$((node_size + mods_size + tree_size))
echo "pack: node.xz              $(mib "$node_size")"
unpacked=$(du -scb $(cat "$out/modules.txt") | tail -1 | cut -f1)
echo "pack: node_modules.tar.xz  $(mib "$mods_size")  ($(mib "$unpacked") unpacked)"
echo "pack: working tree         $(mib "$tree_size")"
echo "pack: total                $(mib "$total") of 64 MiB"
if ((total > 64 * 1048576)); then
  echo "pack: over the device tool's 64 MiB limit" >&2
  exit 1
fi
