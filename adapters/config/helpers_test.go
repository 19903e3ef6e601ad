package config

import (
	"io/fs"
	"testing"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/stretchr/testify/require"
)

// fileKeys returns the leaf keys set by the *.toml files at the root of files.
func fileKeys(t *testing.T, files fs.FS) map[string]bool {
	t.Helper()
	entries, err := fs.ReadDir(files, ".")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		require.NoError(t, err)
		m, err := toml.Parser().Unmarshal(b)
		require.NoError(t, err, e.Name())
		flatten("", m, seen)
	}
	return seen
}

func flatten(prefix string, m map[string]any, out map[string]bool) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = true
	}
}

// readTree maps every file path of files to its content.
func readTree(t *testing.T, files fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		out[p] = string(b)
		return err
	})
	require.NoError(t, err)
	return out
}
