package launch

import (
	"context"
	"time"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
)

// TestSleepCallable is a test-only handler, registered only when
// TASKER_WORKER_TEST_HANDLERS=1: it sleeps for the task context's
// "sleep_ms" (default 1000) or until its context is cancelled, then
// succeeds with {"slept_ms": n}. The shutdown tests run the real binary
// with it to have slow steps in flight.
const TestSleepCallable = "test.sleep"

func registerTestHandlers(r *handler.Registry) error {
	return r.Register(TestSleepCallable, handler.HandlerFunc(func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
		ms := 1000
		if err := sc.ContextValue("sleep_ms", &ms); err != nil || ms <= 0 {
			ms = 1000
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return handler.Succeed(map[string]int{"slept_ms": ms}), nil
		case <-ctx.Done():
			return handler.Success{}, ctx.Err()
		}
	}))
}
