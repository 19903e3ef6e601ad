#!/usr/bin/env bash
# First run of Tasker for Go: compiles the demo program, then runs it. The demo
# builds the three binaries, migrates DATABASE_URL, starts the orchestration and
# a worker, runs the four example workflows and stops both services (see
# tests/demo/main.go). This wrapper exists so that the first run is never
# silent: `go run` compiles before the program can print anything, and on an
# empty Go build cache that alone takes half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKER_DEMO_STARTED=$(date +%s)
export TASKER_DEMO_STARTED

echo "== 0/6 compile the demo program: go build -o bin/demo ./tests/demo"
echo "    the first run fills the Go build cache (modules, standard library): allow a minute or two in all;"
echo "    later runs reuse the cache and take seconds"
mkdir -p bin
t0=$(date +%s)
go build -o bin/demo ./tests/demo
echo "    ok ($(( $(date +%s) - t0 ))s)"

exec bin/demo "$@"
