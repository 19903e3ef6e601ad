package telemetry_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/postgres/stepstoretest"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestInstrumentedStepStoreContract: the metrics wrapper the composition
// root hands to the pipeline keeps the StepStore port's contract of the
// PostgreSQL store it wraps. The suite repeats every read on the wrapped
// store and requires the same answer; the claims it makes through the
// wrapper (ClaimStep and LoadAndClaim, winners and losers) must all reach
// the claim histogram, so none bypassed the wrapper's timing.
func TestInstrumentedStepStoreContract(t *testing.T) {
	var (
		mu      sync.Mutex
		metrics []*telemetry.WorkerMetrics
	)
	stepstoretest.Run(t, func(t *testing.T) stepstoretest.Subject {
		db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 24})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		m, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{}, telemetry.WorkerSources{})
		require.NoError(t, err)
		mu.Lock()
		metrics = append(metrics, m)
		mu.Unlock()
		inner := postgres.NewStepStore(db)
		return stepstoretest.Subject{Store: m.InstrumentStepStore(inner), DB: db, Reference: inner}
	})
	t.Cleanup(func() { // after every parallel subtest
		results := map[string]uint64{}
		for _, m := range metrics {
			fams, err := m.Registry().Gather()
			require.NoError(t, err)
			for _, f := range fams {
				if f.GetName() != "tasker_worker_claim_duration_seconds" {
					continue
				}
				for _, s := range f.GetMetric() {
					results[s.GetLabel()[0].GetValue()] += s.GetHistogram().GetSampleCount()
				}
			}
		}
		require.Positive(t, results[telemetry.ClaimResultClaimed], "winning claims were timed")
		require.Positive(t, results[telemetry.ClaimResultNotClaimable], "losing claims were timed")
		require.Positive(t, results[telemetry.ClaimResultError], "failed claims (missing step) were timed")
	})
}
