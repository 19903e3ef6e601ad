package command

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestEveryAcceptedStepIsProcessedOrReleasedAcrossStop races submitters
// against Run's stop many times: every ExecuteStep that Submit accepted
// (returned nil) must either reach the pipeline or have its intake slot
// released — none may be stranded in the buffer after the final drain.
func TestEveryAcceptedStepIsProcessedOrReleasedAcrossStop(t *testing.T) {
	t.Parallel()
	for round := 0; round < 200; round++ {
		var processed, released, accepted atomic.Int64
		ex := funcExecutor{
			process: func(_ context.Context, _ string, _ ports.QueueMessage, release func()) (pipeline.Decision, error) {
				processed.Add(1)
				return pipeline.DecisionDeletedStale, nil
			},
			complete: func(context.Context, domain.StepCompletionEvent) error { return nil },
		}
		p, err := New(Config{BufferSize: 8, MaxConcurrent: 2}, ex, zap.NewNop())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		runDone := make(chan struct{})
		go func() { p.Run(ctx); close(runDone) }()

		var wg sync.WaitGroup
		for s := 0; s < 4; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					if p.SubmitStep(context.Background(), "q", ports.QueueMessage{MsgID: int64(i)}, func() { released.Add(1) }) == nil {
						accepted.Add(1)
					}
				}
			}()
		}
		cancel()
		wg.Wait()
		<-runDone
		require.Equal(t, accepted.Load(), processed.Load()+released.Load(),
			"round %d: accepted steps are processed or released, never stranded", round)
	}
}
