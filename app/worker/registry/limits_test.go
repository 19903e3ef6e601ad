package registry

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

// TestLoadFileRejectsOversizedTemplate is issue 13 risk 7: a 60 MB
// template file took the worker to 420 MB at start; a file over
// domain.MaxTemplateFileBytes is now refused before it is read.
func TestLoadFileRejectsOversizedTemplate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(domain.MaxTemplateFileBytes+1))
	require.NoError(t, f.Close())
	_, err = LoadFile(path)
	require.ErrorContains(t, err, "template file is 4194305 bytes; the limit is 4194304")
	t.Logf("limit message: %v", err)
}
