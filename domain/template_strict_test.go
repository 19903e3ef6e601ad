package domain

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTemplateYAMLRejectsUnknownKeysWithTheirLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "misspelled dependencies", yaml: `name: t
namespace_name: ns
version: "1.0.0"
steps:
  - name: a
    handler: {callable: x}
  - name: b
    dependancies: [a]
    handler: {callable: x}
`, want: []string{`line 8: unknown key "dependancies" in a step (did you mean "dependencies"?)`}},
		{name: "top level and retry", yaml: `name: t
namespace_name: ns
version: "1.0.0"
desription: typo
steps:
  - name: a
    handler: {callable: x}
    retry:
      limit: 2
      backof: linear
`, want: []string{`line 4: unknown key "desription" in the template (did you mean "description"?)`,
			`line 10: unknown key "backof" in retry (did you mean "backoff"?)`}},
		{name: "no suggestion for a far key", yaml: `name: t
namespace_name: ns
version: "1.0.0"
steps:
  - name: a
    handler: {callable: x}
    frobnicate: true
`, want: []string{`line 7: unknown key "frobnicate" in a step`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTemplateYAML([]byte(tt.yaml))
			var de *TemplateDecodeError
			require.True(t, errors.As(err, &de), "%v", err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, de.Problems, len(tt.want))
			require.Contains(t, de.InFile("dir/t.yaml"), "dir/t.yaml:"+tt.want[0][len("line "):])
		})
	}
}

func TestParseTemplateYAMLIgnoresLoadedFrom(t *testing.T) {
	t.Parallel()
	tm, err := ParseTemplateYAML([]byte(`name: t
namespace_name: ns
version: "1.0.0"
loaded_from: /etc/tasker/t.yaml
steps:
  - name: a
    handler: {callable: x}
`))
	require.NoError(t, err)
	require.Len(t, tm.Steps, 1)
	require.Equal(t, DefaultRetryLimit, tm.Steps[0].Retry.Limit, "defaults still applied")
}

func TestTemplateVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version string
		ok      bool
	}{
		{`"1.0"`, true}, {`"1.0.0"`, true}, {`1.0`, true}, {`"2"`, true}, {`"1.0.0-rc.1+b5"`, true}, {`v2`, true},
		{`""`, false}, {`"1.0/2"`, false}, {`"1 0"`, false}, {`".1"`, false}, {`"12345678901234567"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			tm, err := ParseTemplateYAML([]byte("name: t\nnamespace_name: ns\nversion: " + tt.version +
				"\nsteps:\n  - name: a\n    handler: {callable: x}\n"))
			require.NoError(t, err)
			err = tm.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "version")
		})
	}
}
