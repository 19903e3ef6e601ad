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
	handler.MustRegister("Billing::ChargeCard", handler.HandlerFunc(
		func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
			return handler.Succeed(map[string]any{"charged": true}), nil
		}))
	if os.Getenv("RUN_WORKER") == "1" {
		os.Exit(launch.Main(os.Args[1:]))
	}
}
