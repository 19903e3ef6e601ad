package main

import (
	"fmt"
	"os"
)

// runMigrate applies the embedded migrations to DATABASE_URL.
func runMigrate(args []string) int {
	fmt.Fprintln(os.Stderr, "tasker-orchestration migrate: not implemented yet")
	return 1
}
