// Command covergate prints per-package statement coverage from a profile and
// exits 1 when a gate is not met: go run ./internal/covergate/cmd/covergate -profile coverage.out
package main

import (
	"os"

	"github.com/tasker-systems/tasker-go/internal/covergate"
)

func main() { os.Exit(covergate.Main(os.Args[1:], os.Stdout, os.Stderr)) }
