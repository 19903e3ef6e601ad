#!/usr/bin/env bash
# Runs the whole suite several times (default 5), each with a different
# -shuffle seed, and prints the seeds and a pass/fail line per run, so an
# order-dependent or timing-dependent test shows up. Re-run one order with
# `go test -shuffle=<seed> ./...`.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
export TASKER_TEST_DATABASE_URL="${TASKER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
runs="${1:-5}"
failures=0
for i in $(seq 1 "$runs"); do
  seed=$(( (RANDOM << 15) | RANDOM ))
  log=$(mktemp)
  if go test -race -count=1 -shuffle="$seed" -timeout 15m ./... >"$log" 2>&1; then
    echo "run $i seed $seed: pass"
  else
    failures=$((failures + 1))
    echo "run $i seed $seed: FAIL"; grep -E -- '^(--- FAIL|FAIL|panic:)' "$log" | head -20
  fi
  rm -f "$log"
done
echo "$runs runs, $failures failed"
[ "$failures" -eq 0 ]
