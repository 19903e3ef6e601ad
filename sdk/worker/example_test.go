package worker_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/sdk/worker"
)

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

// Embed the worker in your own program: your context, pool, logger and
// registry. (Compiled, not run: Run serves until the context ends; see
// examples/embedded-worker for a complete program run by an e2e test.)
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zap.NewExample()

	cfg, err := config.Load(config.LoadOptions{}) // defaults + TASKER_* environment
	if err != nil {
		log.Fatal("config", zap.Error(err))
	}
	cfg.Worker.Namespaces = []string{"greetings"}
	cfg.Worker.TemplateDir = "templates"

	pool, err := postgres.Open(ctx, cfg.Database.URL, postgres.PoolConfig{MaxOpenConns: 10})
	if err != nil {
		log.Fatal("database", zap.Error(err))
	}
	defer pool.Close()

	reg := handler.NewRegistry()
	_ = reg.Register("greetings.greet", handler.Typed(func(_ context.Context, _ *handler.StepContext, in greetIn) (greetOut, error) {
		return greetOut{Greeting: "hello " + in.Name}, nil
	}))

	w, err := worker.New(ctx, cfg, worker.WithDB(pool), worker.WithLogger(log), worker.WithHandlers(reg))
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	if err := w.Run(ctx); err != nil { // graceful stop when ctx ends
		log.Fatal("run", zap.Error(err))
	}
}
