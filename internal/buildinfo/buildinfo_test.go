package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	info := func(mainVersion string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: mainVersion}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	tests := []struct {
		name  string
		stamp string
		read  func() (*debug.BuildInfo, bool)
		want  string
	}{
		{name: "stamp wins", stamp: "v1.2.3", read: info("v0.9.0", rev), want: "v1.2.3"},
		{name: "module version", read: info("v0.9.0", rev), want: "v0.9.0"},
		{name: "vcs revision", read: info("(devel)", rev), want: "0123456789ab"},
		{name: "dirty revision", read: info("(devel)", rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			want: "0123456789ab-dirty"},
		{name: "nothing recorded", read: info("(devel)"), want: Fallback},
		{name: "no build info", read: func() (*debug.BuildInfo, bool) { return nil, false }, want: Fallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, resolve(tt.stamp, tt.read))
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	s := String("tasker-worker")
	require.True(t, strings.HasPrefix(s, "tasker-worker "+Get()+" (go"), s)
}
