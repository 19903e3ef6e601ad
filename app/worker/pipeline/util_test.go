package pipeline

import "github.com/tasker-systems/tasker-go/app/worker/handler"

func successOf(v any) handler.Success { return handler.Succeed(v) }
