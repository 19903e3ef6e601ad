package testdb

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

// RegisterExampleTemplates parses and validates every template in dir (the
// repository's configs/tasks/examples, relative to the calling test's
// package) and hands each, with its configuration JSON, to register (the
// caller's template store), failing the test on any error. It returns the
// templates in file order. It takes register rather than a store because
// this package does not import adapters/postgres (see factory.go).
func RegisterExampleTemplates(t testing.TB, dir string, register func(domain.TaskTemplate, json.RawMessage) error) []domain.TaskTemplate {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no templates in %s", dir)
	out := make([]domain.TaskTemplate, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		tmpl, err := domain.ParseTemplateYAML(raw)
		require.NoError(t, err, f)
		require.NoError(t, tmpl.Validate(), f)
		cfg, err := tmpl.ConfigurationJSON()
		require.NoError(t, err, f)
		require.NoError(t, register(tmpl, cfg), f)
		out = append(out, tmpl)
	}
	return out
}
