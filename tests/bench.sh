#!/usr/bin/env bash
# Runs the performance benchmarks named by the test plan and prints a summary
# table. Figures are printed, never asserted: they depend on the machine.
#   command handling latency  (target < 1 ms)      app/worker/command
#   event system throughput   (target > 10k ev/s)  adapters/eventbus
#   web API latency under load (target p99 < 100 ms) tests/perf BenchmarkWorkerWebUnderLoad
#   steps/s end to end          (goal ≥ 2,000/s)    tests/perf BenchmarkWorkerNoopSteps
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
export TASKER_TEST_DATABASE_URL="${TASKER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() { # pkg pattern benchtime
  go test -run '^$' -bench "$2" -benchtime "$3" -count=1 "$1" 2>&1 | tee -a "$out" | grep -E '^(Benchmark|FAIL|---)' || true
}
run ./app/worker/command/ 'CommandRoundTrip|ExecuteStepThroughput' 2s
run ./adapters/eventbus/ 'BusThroughput|BusRoundTrip' 2s
run ./adapters/web/workerapi/ 'HealthReady|Status$' 2s
run ./tests/perf/ 'WorkerWebUnderLoad' 3000x
run ./tests/perf/ 'WorkerNoopSteps' 4000x
run ./adapters/postgres/ 'ClaimAndPersist' 1000x

echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-48s %14s  %s\n' "benchmark" "ns/op" "reported metrics"
# A benchmark that logs while it runs splits its result over two lines (name,
# log output, then the figures): join each figure line to the last name seen.
awk '/^Benchmark/ { name = $1; if ($0 ~ /ns\/op/) print; next }
     /ns\/op/ && name != "" { print name, $0 }' "$out" | awk '{
  name=$1; sub(/-[0-9]+$/, "", name); ns="";
  extra="";
  for (i = 3; i < NF; i += 2) {
    if ($(i+1) == "ns/op") { ns = $i } else if ($(i+1) !~ /^(B\/op|allocs\/op)$/) { extra = extra sprintf("%s %s  ", $i, $(i+1)) }
  }
  printf "%-48s %14s  %s\n", name, ns, extra
}'
