package launch_test

import (
	"context"
	"os"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/cmd/tasker-worker/launch"
)

// A team's own worker binary: register the handlers its templates name, then
// hand over to the same composition root as cmd/tasker-worker. (Compiled, not
// run: Main serves until SIGTERM.)
func Example() {
	type charge struct {
		AmountCents int64 `json:"amount_cents"`
	}
	handler.MustRegister("Billing::ChargeCard", handler.Typed(
		func(ctx context.Context, sc *handler.StepContext, in charge) (map[string]any, error) {
			return map[string]any{"charged": in.AmountCents}, nil
		}))
	if os.Getenv("RUN_WORKER") == "1" {
		os.Exit(launch.Main(os.Args[1:]))
	}
}
