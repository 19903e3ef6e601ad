// Package buildinfo holds the version every binary reports (--version,
// /health/detailed, the tasker_worker_info metric, the HTTP client's
// User-Agent), so all three binaries and the SDK agree on one value.
//
// Release builds stamp it with the linker:
//
//	go build -trimpath -ldflags "-X github.com/tasker-systems/tasker-go/internal/buildinfo.Version=v1.2.3" ./cmd/...
//
// Unstamped builds fall back to what the Go toolchain recorded
// (debug.ReadBuildInfo): the module version for `go install …@vX`, else the
// VCS revision (with "-dirty" for uncommitted changes), else "dev".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the stamped version; empty means "not stamped" and the build
// info decides. It is a var (not a const) so -ldflags -X can set it.
var Version = ""

// Fallback is reported when neither a stamp nor build information exists.
const Fallback = "dev"

var (
	once     sync.Once
	resolved string
)

// Get returns the version: the stamp, else the toolchain's build info, else
// Fallback. It is computed once.
func Get() string {
	once.Do(func() { resolved = resolve(Version, debug.ReadBuildInfo) })
	return resolved
}

// resolve is Get without the cache, with the build-info source injectable
// for tests.
func resolve(stamp string, read func() (*debug.BuildInfo, bool)) string {
	if stamp != "" {
		return stamp
	}
	info, ok := read()
	if !ok || info == nil {
		return Fallback
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return Fallback
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line --version output of a binary, e.g.
// "tasker-worker v1.2.3 (go1.26.0 linux/amd64)".
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", binary, Get(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
