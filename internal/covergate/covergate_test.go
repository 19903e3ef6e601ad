package covergate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const mod = "github.com/tasker-systems/tasker-go"

const profile = `mode: atomic
github.com/tasker-systems/tasker-go/domain/a.go:1.1,2.2 3 1
github.com/tasker-systems/tasker-go/domain/a.go:3.1,4.2 1 0
github.com/tasker-systems/tasker-go/app/worker/b.go:1.1,2.2 4 0
github.com/tasker-systems/tasker-go/app/worker/b.go:1.1,2.2 4 2
github.com/tasker-systems/tasker-go/app/worker/b.go:5.1,6.2 6 0
github.com/tasker-systems/tasker-go/ports/mocks/queue.go:1.1,2.2 100 0
github.com/tasker-systems/tasker-go/cmd/tasker-worker/main.go:1.1,2.2 50 0
github.com/tasker-systems/tasker-go/cmd/tasker-worker/run.go:1.1,2.2 2 1
`

func TestParseProfileMergesRepeatedBlocks(t *testing.T) {
	blocks, err := ParseProfile(strings.NewReader(profile))
	require.NoError(t, err)
	require.Len(t, blocks, 7, "the repeated app/worker block is merged")
	for _, b := range blocks {
		if b.File == mod+"/app/worker/b.go" && b.Start == "1.1" {
			require.Equal(t, 2, b.Count, "a block covered by any run counts as covered")
		}
	}
}

func TestParseProfileRejectsGarbage(t *testing.T) {
	for name, in := range map[string]string{
		"no colon":   "nonsense line",
		"few fields": "a.go:1.1,2.2 3",
		"bad stmts":  "a.go:1.1,2.2 x 1",
		"bad count":  "a.go:1.1,2.2 1 y",
		"bad range":  "a.go:1.1 1 1",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseProfile(strings.NewReader(in))
			require.Error(t, err)
		})
	}
}

func TestByPackageExcludesMocksAndMainWiring(t *testing.T) {
	blocks, err := ParseProfile(strings.NewReader(profile))
	require.NoError(t, err)
	pkgs := ByPackage(blocks, DefaultExcluder())
	got := map[string]PackageCoverage{}
	for _, p := range pkgs {
		got[strings.TrimPrefix(p.Package, mod+"/")] = p
	}
	require.NotContains(t, got, "ports/mocks")
	require.Equal(t, PackageCoverage{Package: mod + "/domain", Statements: 4, Covered: 3}, got["domain"])
	require.Equal(t, PackageCoverage{Package: mod + "/app/worker", Statements: 10, Covered: 4}, got["app/worker"])
	require.Equal(t, PackageCoverage{Package: mod + "/cmd/tasker-worker", Statements: 2, Covered: 2}, got["cmd/tasker-worker"], "main.go is left out, run.go counts")
	require.InDelta(t, 75.0, got["domain"].Percent(), 0.001)
	require.InDelta(t, 100.0, PackageCoverage{}.Percent(), 0.001)
}

func TestCheckGates(t *testing.T) {
	blocks, err := ParseProfile(strings.NewReader(profile))
	require.NoError(t, err)
	pkgs := ByPackage(blocks, DefaultExcluder())
	res := Check(mod, pkgs, []Gate{{Name: "domain/", Prefix: "domain/", Minimum: 70}, {Name: "app/", Prefix: "app/", Minimum: 90}, {Name: "total", Minimum: 50}})
	require.True(t, res[0].Passed())
	require.False(t, res[1].Passed())
	require.Equal(t, 16, res[2].Coverage.Statements)
	require.Equal(t, 9, res[2].Coverage.Covered)
	require.True(t, res[2].Passed())
}

func TestMainExitCodes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.out")
	require.NoError(t, os.WriteFile(p, []byte(profile), 0o600))

	var out, errb bytes.Buffer
	require.Equal(t, 1, Main([]string{"-profile", p}, &out, &errb), "app/ is at 40%% < 90%%")
	require.Contains(t, out.String(), "coverage gate app/")
	require.Contains(t, out.String(), "FAIL")

	out.Reset()
	require.Equal(t, 0, Main([]string{"-profile", p, "-min-domain", "70", "-min-app", "40", "-min-total", "50"}, &out, &errb))
	require.NotContains(t, out.String(), "FAIL")

	require.Equal(t, 2, Main([]string{"-profile", filepath.Join(dir, "missing")}, &out, &errb))
	require.Equal(t, 2, Main([]string{"-nope"}, &out, &errb))
	require.NoError(t, os.WriteFile(p, []byte("garbage"), 0o600))
	require.Equal(t, 2, Main([]string{"-profile", p}, &out, &errb))
}

func TestDefaultExcluder(t *testing.T) {
	ex := DefaultExcluder()
	for file, excluded := range map[string]bool{
		mod + "/ports/mocks/queue.go":                                             true,
		mod + "/cmd/tasker-worker/main.go":                                        true,
		mod + "/cmd/tasker-worker/run.go":                                         false,
		mod + "/adapters/pgmq/queuetest/queuetest.go":                             true,
		mod + "/adapters/postgres/stepstoretest/stepstoretest.go":                 true,
		mod + "/adapters/httpclient/orchestrationapitest/orchestrationapitest.go": true,
		mod + "/adapters/pgmq/client.go":                                          false,
		mod + "/internal/testdb/testdb.go":                                        false,
		mod + "/tests/e2e/orchestration_harness.go":                               false,
		mod + "/adapters/web/workerapi/server.go":                                 false,
	} {
		require.Equal(t, excluded, ex.Excluded(file), file)
	}
}
