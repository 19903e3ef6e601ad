package main

import (
	"fmt"
	"os"
)

// runServe starts the orchestration service. Owned by the orchestration issue.
func runServe(args []string) int {
	fmt.Fprintln(os.Stderr, "tasker-orchestration serve: not implemented yet")
	return 1
}
