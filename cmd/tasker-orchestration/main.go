// Command tasker-orchestration runs the Tasker orchestration service
// (subcommand serve, the default) or applies the database migrations
// (subcommand migrate).
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	sub := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "serve":
		return runServe(args)
	case "migrate":
		return runMigrate(args)
	case "help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "tasker-orchestration: unknown subcommand %q\n", sub)
		usage()
		return 2
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tasker-orchestration [serve|migrate|help]")
}
