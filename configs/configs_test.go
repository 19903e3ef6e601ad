package configs_test

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/configs"
)

// The embedded tree is rooted like a config dir: base/ with every section's
// file and environments/<env>/, and nothing else of configs/ (tasks/ is the
// worker's template directory, not configuration).
func TestTaskerIsRootedLikeAConfigDir(t *testing.T) {
	t.Parallel()
	tree := configs.Tasker()
	for _, f := range []string{"base/pgmq.toml", "base/worker.toml", "base/orchestration.toml",
		"environments/production/worker.toml", "environments/test/pgmq.toml"} {
		b, err := fs.ReadFile(tree, f)
		require.NoError(t, err, f)
		require.NotEmpty(t, b, f)
	}
	top, err := fs.ReadDir(tree, ".")
	require.NoError(t, err)
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"base", "environments"}, names)
}
