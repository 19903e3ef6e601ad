package workerapi

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines and, when the whole package ran
// (no -run filter), that every registered route was hit by some test
// (issue 7 item 4). It runs after all tests, so -shuffle cannot break it.
func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); f == nil || f.Value.String() == "" {
		if missing := unhitRoutes(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: routes without a test hitting them: %v\n", missing)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// unhitRoutes enumerates the routes of a fully configured engine (metrics
// and auth on) and returns those no test recorded a hit for.
func unhitRoutes() []string {
	srv := routeInventory()
	var missing []string
	for _, r := range srv.Engine().Routes() {
		if _, ok := routeHits.Load(r.Method + " " + r.Path); !ok {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	sort.Strings(missing)
	return missing
}
