// Package architecture makes the hexagonal layering executable: every
// production package's imports (test files excluded) are checked against
// the rules of README "Architecture", so a forbidden import fails the test
// suite instead of waiting for a reviewer.
package architecture

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/tasker-systems/tasker-go"

// pkg is one package of the module as `go list` reports it.
type pkg struct {
	path    string   // relative to the module: "adapters/postgres"
	imports []string // module-relative paths of this module's packages, plus external paths as they are
}

// listPackages runs `go list` over the whole module from its root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p := pkg{path: rel(f[0])}
		for _, imp := range f[1:] {
			p.imports = append(p.imports, rel(imp))
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

// rel strips the module prefix; the module's own packages become
// "domain", "adapters/pgmq", …; anything else keeps its full path.
func rel(p string) string {
	if p == module {
		return "."
	}
	return strings.TrimPrefix(p, module+"/")
}

func internalPkg(p string) bool {
	return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") && !stdlib(p)
}

// stdlib reports whether p is a standard library package (no dot in its
// first element and not one of this module's top-level directories).
func stdlib(p string) bool {
	first := strings.SplitN(p, "/", 2)[0]
	if strings.Contains(first, ".") {
		return false
	}
	switch first {
	case "domain", "ports", "adapters", "app", "cmd", "internal", "sdk", "client", "examples", "tests", "deployments", "docs", "configs":
		return false
	}
	return true
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// violation says why importer must not import imp ("" when allowed).
func violation(importer, imp string) string {
	if stdlib(imp) {
		if under(importer, "domain") && (under(imp, "database/sql") || under(imp, "net/http")) {
			return "domain holds pure types and rules: no SQL, no HTTP"
		}
		return ""
	}
	if !internalPkg(imp) { // third-party module
		if under(importer, "domain") {
			for _, banned := range []string{"github.com/lib/pq", "github.com/jmoiron/sqlx", "github.com/gin-gonic/gin", "go.uber.org/zap"} {
				if under(imp, banned) {
					return "domain holds pure types and rules: no drivers, web frameworks or loggers"
				}
			}
		}
		return ""
	}
	for _, top := range []string{"cmd", "tests", "examples"} {
		if under(imp, top) && !under(importer, top) && !under(importer, "tests") {
			return top + "/ is a leaf: nothing outside it (but the test harnesses) imports it"
		}
	}
	switch {
	case under(importer, "domain"):
		if !under(imp, "domain") {
			return "domain imports nothing from this repository but domain"
		}
	case under(importer, "ports"):
		if !under(imp, "domain") && !under(imp, "ports") {
			return "ports declare interfaces over domain types only"
		}
	case under(importer, "app"):
		if !under(imp, "domain") && !under(imp, "ports") && !under(imp, "app") {
			return "app services depend on domain and ports, never on adapters, the SDK or composition roots"
		}
	case under(importer, "adapters"):
		tech := strings.Join(strings.SplitN(importer, "/", 3)[:2], "/") // adapters/<technology>
		switch {
		case under(imp, "domain"), under(imp, "ports"), under(imp, "internal"), under(imp, tech):
		case tech == "adapters/config" && imp == "configs": // the default files it loads
		case under(imp, "adapters"):
			return "adapters do not import each other sideways (" + tech + " → " + imp + "); the composition root wires them"
		default:
			return "adapters depend on domain, ports and internal helpers only"
		}
	case under(importer, "internal"):
		if under(imp, "sdk") || under(imp, "client") {
			return "internal helpers do not depend on the public SDK or client"
		}
	case under(importer, "client"):
		if !under(imp, "domain") && !under(imp, "adapters/httpclient") {
			return "the public client is a facade over adapters/httpclient and domain"
		}
	}
	return ""
}

func TestImportsFollowTheArchitecture(t *testing.T) {
	var found []string
	for _, p := range listPackages(t) {
		for _, imp := range p.imports {
			why := violation(p.path, imp)
			if why == "" {
				continue
			}
			found = append(found, fmt.Sprintf("%s → %s: %s", p.path, imp, why))
		}
	}
	sort.Strings(found)
	require.Empty(t, found, "forbidden imports (README \"Architecture\")")
}

// The rules themselves, on made-up edges: each forbidden shape is caught
// and each allowed one passes, so a rule cannot silently stop checking.
func TestViolationRules(t *testing.T) {
	t.Parallel()
	forbidden := [][2]string{
		{"domain", "ports"},
		{"domain", "database/sql"},
		{"domain", "github.com/lib/pq"},
		{"domain", "go.uber.org/zap"},
		{"ports", "adapters/postgres"},
		{"app/worker/pipeline", "adapters/postgres"},
		{"app/orchestration/result", "sdk/worker"},
		{"app/worker/engine", "cmd/tasker-worker/launch"},
		{"adapters/postgres", "adapters/pgmq"},
		{"adapters/web/workerapi", "adapters/telemetry"},
		{"adapters/httpclient", "adapters/config"},
		{"adapters/postgres", "app/worker/engine"},
		{"internal/testdb", "sdk/worker"},
		{"sdk/worker", "tests/e2e"},
		{"client", "adapters/postgres"},
	}
	for _, e := range forbidden {
		require.NotEmpty(t, violation(e[0], e[1]), "%s → %s must be forbidden", e[0], e[1])
	}
	allowed := [][2]string{
		{"domain", "domain/sqlstate"},
		{"domain", "github.com/google/uuid"},
		{"ports", "domain"},
		{"app/worker/pipeline", "app/lifecycle"},
		{"app/worker/engine", "go.uber.org/zap"},
		{"adapters/web/workerapi", "adapters/web/middleware"},
		{"adapters/web/workerapi", "internal/dberr"},
		{"adapters/postgres", "adapters/postgres/migrations"},
		{"sdk/worker", "adapters/postgres"},
		{"cmd/tasker-worker", "cmd/tasker-worker/launch"},
		{"client", "adapters/httpclient"},
		{"tests/e2e", "cmd/tasker-worker/launch"},
	}
	for _, e := range allowed {
		require.Empty(t, violation(e[0], e[1]), "%s → %s must be allowed", e[0], e[1])
	}
}
