package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const brokenTemplate = `name: broken
namespace_name: examples
version: "1.0.0"
steps:
  - name: a
    handler: {callable: ""}
    dependencies: [b]
  - name: b
    handler: {callable: x.b}
    dependencies: [a, ghost]
`

func TestTemplateValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	garbage := filepath.Join(dir, "garbage.yaml")
	require.NoError(t, os.WriteFile(broken, []byte(brokenTemplate), 0o600))
	require.NoError(t, os.WriteFile(garbage, []byte("steps: [unclosed\n"), 0o600))
	diamond := filepath.Join("..", "..", "configs", "tasks", "examples", "diamond_workflow.yaml")

	t.Run("valid examples", func(t *testing.T) {
		t.Parallel()
		files, err := filepath.Glob(filepath.Join("..", "..", "configs", "tasks", "examples", "*.yaml"))
		require.NoError(t, err)
		require.Len(t, files, 4)
		r := runCLI(t, nil, append([]string{"template", "validate"}, files...)...)
		require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
		require.Contains(t, r.stdout, diamond+": ok (examples/diamond_workflow/1.0.0, 4 steps)")
	})

	t.Run("each problem with its field", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, nil, "template", "validate", diamond, broken, garbage, filepath.Join(dir, "missing.yaml"))
		require.Equal(t, exitUsage, r.code)
		require.Contains(t, r.stdout, diamond+": ok")
		require.Contains(t, r.stdout, broken+": steps[0].handler.callable: ")
		require.Contains(t, r.stdout, broken+": steps[1].dependencies")
		require.Contains(t, r.stdout, "ghost")
		require.Contains(t, r.stdout, garbage+": parse task template YAML")
		require.Contains(t, r.stdout, "missing.yaml: cannot read")
		require.Contains(t, r.stderr, "3 of 4 template files are invalid")
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, nil, "template", "validate", "--output", "json", diamond, broken)
		require.Equal(t, exitUsage, r.code)
		var reports []templateReport
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &reports), r.stdout)
		require.Len(t, reports, 2)
		require.True(t, reports[0].Valid)
		require.Empty(t, reports[0].Errors)
		require.False(t, reports[1].Valid)
		require.Equal(t, "examples/broken/1.0.0", reports[1].Template)
		require.NotEmpty(t, reports[1].Errors)
		for _, e := range reports[1].Errors {
			require.NotEmpty(t, e.Field, "validation problems name their field: %+v", e)
		}
	})
}

// TestTemplateValidateNamesFileAndLineOfAMisspelledKey: a misspelled key is
// an error in the compiler form FILE:LINE, and version "1.0" is accepted.
func TestTemplateValidateNamesFileAndLineOfAMisspelledKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: t\nnamespace_name: ns\nversion: \"1.0\"\nsteps:\n"+
		"  - name: a\n    handler: {callable: x}\n  - name: b\n    dependancies: [a]\n    handler: {callable: x}\n"), 0o600))
	r := runCLI(t, nil, "template", "validate", bad)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stdout, bad+`:8: unknown key "dependancies" in a step (did you mean "dependencies"?)`)

	good := filepath.Join(dir, "ok.yaml")
	require.NoError(t, os.WriteFile(good, []byte("name: t\nnamespace_name: ns\nversion: \"1.0\"\nsteps:\n"+
		"  - name: a\n    handler: {callable: x}\n  - name: b\n    dependencies: [a]\n    handler: {callable: x}\n"), 0o600))
	r = runCLI(t, nil, "template", "validate", good)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, good+": ok (ns/t/1.0, 2 steps)")

	r = runCLI(t, nil, "template", "validate", bad, "-o", "json")
	require.Contains(t, r.stdout, `"line": 8`)
}
