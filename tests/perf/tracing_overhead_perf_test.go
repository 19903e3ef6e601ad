package perf

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestTracingOverhead is issue 15's overhead figure: diamond bursts on the
// real binaries (1 orchestration, 2 workers) with tracing off (the default)
// and on, exporting OTLP over HTTP to a local receiver that accepts and
// discards every export. Runs alternate off/on so drift on a shared machine
// hits both; the medians and their difference are printed ("PERF e2e").
//
//	TASKER_PERF=1 TASKER_PERF_E2E_TASKS=500 go test -count=1 -run TestTracingOverhead -v -timeout 30m ./tests/perf/
//
// TASKER_PERF_E2E_TASKS and TASKER_PERF_E2E_RUNS size it (defaults 2000, 3).
func TestTracingOverhead(t *testing.T) {
	perfEnabled(t)
	cfg := e2eConfigFromEnv(t)
	bin := binaries(t)
	admin, err := sqlx.Open("postgres", withParam(testdb.EmptyURL(t), "application_name", appHarness+"-admin"))
	require.NoError(t, err)
	admin.SetMaxOpenConns(2)
	t.Cleanup(func() { _ = admin.Close() })

	var exports, bytes atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exports.Add(1)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	}))
	t.Cleanup(sink.Close)

	var off, on []e2eFigures
	for r := 1; r <= cfg.runs; r++ {
		t.Run(fmt.Sprintf("off-%d", r), func(t *testing.T) {
			f := runBurst(t, bin, testdb.URL(t), admin, cfg, "diamond", 1, 2)
			printFigures(fmt.Sprintf("tracing off, diamond run %d/%d", r, cfg.runs), f)
			off = append(off, f)
		})
		t.Run(fmt.Sprintf("on-%d", r), func(t *testing.T) {
			// serviceEnv passes OTEL_* through to the binaries.
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
			before := exports.Load()
			f := runBurst(t, bin, testdb.URL(t), admin, cfg, "diamond", 1, 2)
			printFigures(fmt.Sprintf("tracing on, diamond run %d/%d", r, cfg.runs), f)
			on = append(on, f)
			require.Greater(t, exports.Load(), before, "the services exported spans")
		})
	}
	printMedians(fmt.Sprintf("tracing off MEDIAN of %d", len(off)), off)
	printMedians(fmt.Sprintf("tracing on (OTLP/HTTP to a no-op receiver) MEDIAN of %d", len(on)), on)
	mOff, mOn := medianOf(off, e2eFigures.stepsPerSec), medianOf(on, e2eFigures.stepsPerSec)
	e2ePrint("tracing overhead: %.1f steps/s off vs %.1f on = %+.1f%% (receiver got %d exports, %d bytes)",
		mOff, mOn, (mOn-mOff)/mOff*100, exports.Load(), bytes.Load())
}
