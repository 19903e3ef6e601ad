package workerapi

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"
)

// benchmarkRoute serves path in-process (fakes, no network) and reports
// p50/p99 latency per request besides ns/op.
func benchmarkRoute(b *testing.B, path string) {
	hc := testHealth()
	hc.StallCheckedLoops = []string{}
	e := setupHealth(b, hc)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		lat = append(lat, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
}

func BenchmarkHealthReady(b *testing.B) { benchmarkRoute(b, "/health/ready") }
func BenchmarkStatus(b *testing.B)      { benchmarkRoute(b, "/status") }
func BenchmarkMetrics(b *testing.B)     { benchmarkRoute(b, "/metrics") }
