package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const overriddenYAML = `name: billing
namespace_name: ns
version: "2.0.0"
steps:
  - name: charge
    handler: {callable: billing.charge}
  - name: notify
    handler: {callable: billing.notify}
  - name: notify_again
    handler: {callable: billing.notify}
`

// MissingHandlers names served namespaces without a template and, per
// served template, each callable without a handler once; templates of other namespaces are ignored.
func TestMissingHandlers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", tmpl("square", "ns"))
	writeFile(t, dir, "b.yaml", overriddenYAML)
	writeFile(t, dir, "c.yaml", tmpl("foreign", "elsewhere"))
	r, store, _ := setup(t, dir, false) // serves ns and other
	expectRegister(store, "square", nil)
	expectRegister(store, "billing", nil)
	expectRegister(store, "foreign", nil)
	_, err := r.Load(context.Background())
	require.NoError(t, err)
	has := map[string]bool{"examples.square": true, "billing.charge": true}
	missing := r.MissingHandlers("test", func(c string) bool { return has[c] })
	require.Equal(t, []Missing{
		{Namespace: "ns", Template: "billing/2.0.0", Callable: "billing.notify"},
		{Namespace: "other"},
	}, missing)
	msg := (&MissingError{Missing: missing}).Error()
	require.NotContains(t, msg, "\n")
	require.True(t, strings.HasPrefix(msg, "worker.require_handlers: namespace ns template billing/2.0.0 step handler.callable \"billing.notify\" has no registered handler; "))
	require.Contains(t, msg, "namespace other has no task template")
	require.Len(t, r.MissingHandlers("production", func(string) bool { return true }), 1, "only the namespace without templates")
}
