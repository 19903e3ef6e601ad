package servicecli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCPUProfileIsWrittenOnlyWhenAsked(t *testing.T) {
	stop, err := StartCPUProfile(func(string) string { return "" })
	require.NoError(t, err)
	stop()

	dir := t.TempDir()
	stop, err = StartCPUProfile(func(k string) string {
		if k == CPUProfileEnv {
			return filepath.Join(dir, "orch-%p.pprof")
		}
		return ""
	})
	require.NoError(t, err)
	stop()
	fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("orch-%d.pprof", os.Getpid())))
	require.NoError(t, err)
	require.Positive(t, fi.Size(), "a stopped profile has its header written")

	_, err = StartCPUProfile(func(string) string { return filepath.Join(dir, "missing", "x.pprof") })
	require.ErrorContains(t, err, CPUProfileEnv)
}
