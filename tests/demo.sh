#!/usr/bin/env bash
# First run of Tasker for Go: compiles the demo program, then runs it. The demo
# builds the three binaries, migrates DATABASE_URL, starts the orchestration and
# a worker, runs the four example workflows and stops both services (see
# tests/demo/main.go). This wrapper exists so that the first run is never
# silent: `go run` compiles before the program can print anything, and on an
# empty Go build cache that alone takes a minute. So the compile here reports
# progress every 5 s like the demo's own build of the binaries, and uses the
# same -trimpath: the packages it compiles (the standard library, the shared
# dependencies) are then reused from the build cache by that second build.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKER_DEMO_STARTED=$(date +%s)
export TASKER_DEMO_STARTED

echo "== 0/6 compile the demo program: go build -trimpath -o bin/demo ./tests/demo"
echo "    the first run fills the Go build cache (modules, standard library): allow a few minutes in all;"
echo "    later runs reuse the cache and take seconds"
mkdir -p bin
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# `go build -v` names each package it compiles (not those from the cache) on
# stderr, one bare import path a line; anything else there is a message.
pkgline='^[A-Za-z0-9._~/-]+$'
t0=$(date +%s)
(
  while sleep 5; do
    echo "    … $(( $(date +%s) - t0 ))s: $(grep -cE "$pkgline" "$log") packages compiled, latest $(grep -E "$pkgline" "$log" | tail -n1)"
  done
) &
ticker=$!
status=0
go build -v -trimpath -o bin/demo ./tests/demo 2>"$log" || status=$?
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  grep -vE "$pkgline" "$log" >&2 || true
  echo "demo failed: go build ./tests/demo exited $status" >&2
  exit "$status"
fi
echo "    ok ($(( $(date +%s) - t0 ))s, $(grep -cE "$pkgline" "$log" || true) packages compiled, the rest from the build cache)"

rm -f "$log"
trap - EXIT
exec bin/demo "$@"
