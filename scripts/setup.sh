#!/usr/bin/env bash
# One command from a fresh clone to a working torchvid (README "Set up"): installs what is missing
# from Debian (libtorch, Python torch, redis-server, chromium), installs npm dependencies (which builds the
# native addon), builds the TypeScript and writes the small default model to models/tiny.
# Downloads only from apt and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

have_libtorch() {
  node -e 'import("./scripts/find-libtorch.mjs").then(m => process.exit(m.findLibtorch() ? 0 : 1))'
}
python_with_torch() {
  for py in "${TORCHVID_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch' >/dev/null 2>&1 && { echo "$py"; return 0; }
  done
  return 1
}

# Debian packages, installed only when missing: libtorch + Python torch (the addon and the
# converter), redis-server (the job-queue tests start their own on a random port) and chromium
# (the studio's page tests drive it headless).
APT_PACKAGES=()
if ! have_libtorch || ! python_with_torch >/dev/null; then APT_PACKAGES+=(libtorch-dev python3-torch); fi
command -v redis-server >/dev/null 2>&1 || APT_PACKAGES+=(redis-server)
[ -x /usr/bin/chromium ] || APT_PACKAGES+=(chromium)
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  say "Installing from Debian: apt-get install ${APT_PACKAGES[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi
PYTHON="$(python_with_torch)"
say "libtorch: $(node -e 'import("./scripts/find-libtorch.mjs").then(m => { const l = m.findLibtorch(); console.log(`${l.version} (${l.source}) ${l.torchDir}`) })'); Python with torch: $PYTHON"

say "Installing npm dependencies (npm ci builds the native addon)"
npm ci --no-audit --no-fund

say "Building TypeScript (dist/)"
npm run --silent build:ts

if [ ! -f models/tiny/manifest.json ]; then
  say "Writing the small default model to models/tiny (random weights, seconds on a CPU)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd tools && "$PYTHON" -m convert --random tiny "$tmp/checkpoint" --quiet && "$PYTHON" -m convert "$tmp/checkpoint" ../models/tiny --quiet)
fi
say "Ready: run \`npm test\`, or \`npx torchvid generate \"a corgi running on the beach\" -o corgi.mp4\`"
