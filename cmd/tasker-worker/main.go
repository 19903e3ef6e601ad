// Command tasker-worker runs a Tasker worker: it registers the task
// templates it finds, serves the step queues of its namespaces with the Go
// handlers compiled into it (the examples and any registered with
// handler.Register), and exposes the worker HTTP API. The composition root
// lives in package launch so teams can build the same binary with their own
// handlers registered.
package main

import (
	"os"

	"github.com/tasker-systems/tasker-go/cmd/tasker-worker/launch"
)

func main() { os.Exit(launch.Main(os.Args[1:])) }
