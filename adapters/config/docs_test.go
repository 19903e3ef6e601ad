package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docs/configuration.md must document every key, so a new field cannot ship
// without its documentation.
func TestConfigurationDocListsEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	doc := string(b)
	for key := range configSchema.leaves {
		require.True(t, strings.Contains(doc, "| `"+key+"` |"), "docs/configuration.md has no row for %s", key)
	}
}
