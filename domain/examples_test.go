package domain

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The example templates are the shared fixtures of the worker's handlers
// (examples.square / examples.multiply) and of the end-to-end tests, so their
// exact step names and edges are pinned here.
func TestExampleTemplates(t *testing.T) {
	t.Parallel()
	const (
		square   = "examples.square"
		multiply = "examples.multiply"
	)
	want := map[string]map[string][]string{ // template → step → dependencies
		"linear_workflow": {
			"linear_step_1": {},
			"linear_step_2": {"linear_step_1"},
			"linear_step_3": {"linear_step_2"},
			"linear_step_4": {"linear_step_3"},
		},
		"diamond_workflow": {
			"diamond_start":    {},
			"diamond_branch_b": {"diamond_start"},
			"diamond_branch_c": {"diamond_start"},
			"diamond_end":      {"diamond_branch_b", "diamond_branch_c"},
		},
		"tree_workflow": {
			"tree_root":              {},
			"tree_branch_left":       {"tree_root"},
			"tree_branch_right":      {"tree_root"},
			"tree_leaf_d":            {"tree_branch_left"},
			"tree_leaf_e":            {"tree_branch_left"},
			"tree_leaf_f":            {"tree_branch_right"},
			"tree_leaf_g":            {"tree_branch_right"},
			"tree_final_convergence": {"tree_leaf_d", "tree_leaf_e", "tree_leaf_f", "tree_leaf_g"},
		},
		"mixed_dag_workflow": {
			"dag_init":          {},
			"dag_process_left":  {"dag_init"},
			"dag_process_right": {"dag_init"},
			"dag_validate":      {"dag_process_left", "dag_process_right"},
			"dag_transform":     {"dag_process_left"},
			"dag_analyze":       {"dag_process_right"},
			"dag_finalize":      {"dag_validate", "dag_transform", "dag_analyze"},
		},
	}

	files, err := filepath.Glob(filepath.Join("..", "configs", "tasks", "examples", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(want))

	withEnvOverride := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			tpl, err := ParseTemplateYAML(data)
			require.NoError(t, err)
			require.NoError(t, tpl.Validate())

			require.Equal(t, "examples", tpl.NamespaceName)
			require.Equal(t, "1.0.0", tpl.Version)
			require.Equal(t, tpl.Name+".yaml", filepath.Base(f))
			steps, ok := want[tpl.Name]
			require.True(t, ok, "unexpected template %s", tpl.Name)
			require.Len(t, tpl.Steps, len(steps))

			hasRetry := false
			for _, s := range tpl.Steps {
				deps, ok := steps[s.Name]
				require.True(t, ok, "unexpected step %s", s.Name)
				require.Equal(t, deps, s.Dependencies, "dependencies of %s", s.Name)
				require.NotNil(t, s.Description, "description of %s", s.Name)
				if len(deps) > 1 {
					require.Equal(t, multiply, s.Handler.Callable, "join step %s", s.Name)
				} else {
					require.Equal(t, square, s.Handler.Callable, "step %s", s.Name)
				}
				if s.Retry.BackoffBaseMs == nil || *s.Retry.BackoffBaseMs != DefaultBackoffBaseMs || s.Retry.Limit != DefaultRetryLimit {
					hasRetry = true // an explicit retry block changed the default policy
				}
			}
			require.True(t, hasRetry, "at least one step declares a retry block")

			if _, ok := tpl.Environments["test"]; ok {
				withEnvOverride++
				resolved := tpl.ResolveForEnvironment("test")
				require.NoError(t, resolved.Validate())
				for _, s := range resolved.Steps {
					require.NotNil(t, s.TimeoutSeconds, "test environment sets a timeout on %s", s.Name)
				}
			}
		})
	}
	require.GreaterOrEqual(t, withEnvOverride, 1, "one example carries an environments.test override")
}
