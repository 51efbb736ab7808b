#!/usr/bin/env bash
# Proves the README's two commands on a machine that has never run them: a fresh clone of HEAD, an empty
# HOME (so no npm cache, no VS Code server in ~/.cache) and a clean environment (only PATH), then
# `npm install && npm run sample` and `npm test`, as a new user types them. Debian packages are the one
# thing it shares with this machine (run as root, npm test installs any that are missing).
# Usage: scripts/fresh-machine-check.sh [runs=1]    Prints each run's final 'N passed, N failed' line.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-1}"
work="$(mktemp -d /tmp/quantlens-fresh-XXXXXX)"
git clone -q "$repo" "$work/clone"
home="$work/home"; mkdir -p "$home"
for i in $(seq 1 "$runs"); do
  echo "fresh-machine-check: run $i of $runs in $work/clone (HOME=$home)"
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" TERM=dumb bash -c \
    'cd "$0" && npm install && npm run sample && npm test' "$work/clone" > "$work/run-$i.log" 2>&1 || { echo "run $i failed; log: $work/run-$i.log"; tail -30 "$work/run-$i.log"; exit 1; }
  grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/run-$i.log" | tail -1
done
echo "fresh-machine-check: logs in $work"
