#!/usr/bin/env bash
# A/B of `torchvid generate "a corgi" --steps 10` on models/tiny: another checkout (A, e.g. main)
# against this one (B), interleaved round by round because the machine is shared (other load hits
# both sides alike). Prints wall, user and system seconds per run.
# usage: bash bench/generate-ab.sh /path/to/main-checkout [rounds]
set -euo pipefail
A=${1:?usage: bash bench/generate-ab.sh /path/to/other-checkout [rounds]}
B=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${2:-3}
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    dir=$A; [ "$side" = B ] && dir=$B
    /usr/bin/time -f "round $r $side wall %e s user %U s sys %S s" \
      node "$dir/bin/torchvid.js" generate "a corgi" --steps 10 --model "$B/models/tiny" -o "$out/$side.gif" >/dev/null 2>"$out/err" || { cat "$out/err"; exit 1; }
    tail -1 "$out/err"
  done
done
rm -rf "$out"
