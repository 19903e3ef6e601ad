package servicecli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
)

// CPUProfileEnv names the file a CPU profile of a service's whole run is
// written to; "%p" in it is replaced by the process id, so several services
// started with the same environment write one profile each. Unset (the
// default) profiles nothing. It exists for performance work on the real
// binaries under load (tests/perf), where an HTTP pprof endpoint would be one
// more port to open and protect; the profile is written when the service
// stops.
const CPUProfileEnv = "TASKER_CPU_PROFILE"

// StartCPUProfile starts the CPU profile asked for by TASKER_CPU_PROFILE
// and returns the function that stops and writes it.
func StartCPUProfile(getenv func(string) string) (func(), error) {
	path := getenv(CPUProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	path = strings.ReplaceAll(path, "%p", fmt.Sprint(os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: start CPU profile: %w", CPUProfileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
