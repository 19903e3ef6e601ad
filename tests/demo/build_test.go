package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsPackageLine(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		"github.com/lib/pq": true, "net/http": true, "github.com/tasker-systems/tasker-go/cmd/taskerctl": true,
		"": false, "# github.com/x/y": false, "./main.go:3:2: undefined: foo": false,
		"go: downloading github.com/gin-gonic/gin v1.12.0": false,
	} {
		require.Equal(t, want, isPackageLine(line), line)
	}
}

func TestBuildProgress_CountsPackagesAndPassesTheRestThrough(t *testing.T) {
	t.Parallel()
	var p buildProgress
	var rest bytes.Buffer
	p.consume(strings.NewReader("go: downloading github.com/lib/pq v1.12.3\nnet/http\ngithub.com/lib/pq\n# example.com/x\nx.go:1:1: bad\n"), &rest)
	n, last := p.snapshot()
	require.Equal(t, 2, n)
	require.Equal(t, "github.com/lib/pq", last)
	require.Equal(t, "go: downloading github.com/lib/pq v1.12.3\n# example.com/x\nx.go:1:1: bad\n", rest.String())
}

func TestStartTime(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	got, why := startTime(strconv.FormatInt(now.Unix()-95, 10), now)
	require.Equal(t, now.Add(-95*time.Second), got, "tests/demo.sh's start counts")
	require.Contains(t, why, "tests/demo.sh")
	for _, env := range []string{"", "x", strconv.FormatInt(now.Unix()+10, 10), strconv.FormatInt(now.Unix()-2*86400, 10)} {
		got, why := startTime(env, now)
		require.Equal(t, now, got, "%q is ignored", env)
		require.Contains(t, why, "go run")
	}
}
