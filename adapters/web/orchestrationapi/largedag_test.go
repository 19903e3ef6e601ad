package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
)

// dagYAML is a template of n steps where step i depends on steps i-1,
// i-2 and i/2 (up to three parents): a wide, deep DAG with ~3n edges.
func dagYAML(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnamespace_name: examples\nversion: \"1.0.0\"\nsteps:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%d\n    handler: {callable: examples.square}\n", i)
		deps := map[int]bool{}
		for _, d := range []int{i - 1, i - 2, i / 2} {
			if d >= 0 && d < i {
				deps[d] = true
			}
		}
		if len(deps) > 0 {
			var names []string
			for d := range deps {
				names = append(names, fmt.Sprintf("s%d", d))
			}
			fmt.Fprintf(&b, "    dependencies: [%s]\n", strings.Join(names, ", "))
		}
	}
	return b.String()
}

// TestLargeDAGCreationIsLinear is issue 13 risk 7: it creates tasks from a
// 100- and a 300-step template and prints the creation time and steps/s;
// the per-step cost must not grow with the size (before: 3,100 steps took
// 14 s). The limits' messages are shown too.
func TestLargeDAGCreationIsLinear(t *testing.T) {
	f := setup(t, web.Config{})
	store := postgres.NewTemplateStore(f.db)
	perStep := map[int]time.Duration{}
	for _, n := range []int{100, 300} {
		name := fmt.Sprintf("dag_%d", n)
		tmpl, err := domain.ParseTemplateYAML([]byte(dagYAML(name, n)))
		require.NoError(t, err)
		require.NoError(t, tmpl.Validate())
		cfg, err := tmpl.ConfigurationJSON()
		require.NoError(t, err)
		_, err = store.RegisterTemplate(context.Background(), tmpl, cfg)
		require.NoError(t, err)
		f.do(t, http.MethodPost, "/v1/tasks", createBody(name, `{}`)) // warm caches and statements
		const runs = 3
		var best time.Duration
		for range runs {
			start := time.Now()
			resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody(name, `{}`))
			d := time.Since(start)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var created domain.TaskCreationResponse
			require.NoError(t, json.Unmarshal(body, &created))
			require.Equal(t, n, created.StepCount)
			if best == 0 || d < best {
				best = d
			}
		}
		perStep[n] = best / time.Duration(n)
		t.Logf("%d-step template (~%d edges): task created in %s (best of %d) = %.0f steps/s",
			n, 3*n, best.Round(time.Millisecond), runs, float64(n)/best.Seconds())
	}
	require.Less(t, perStep[300], 3*perStep[100], "per-step creation cost must not grow with DAG size")

	big := domain.TaskTemplate{Name: "too_big", NamespaceName: "examples", Version: "1.0.0"}
	for i := range domain.MaxTemplateSteps + 1 {
		big.Steps = append(big.Steps, domain.StepDefinition{Name: fmt.Sprintf("s%d", i), Handler: domain.HandlerDefinition{Callable: "x"}})
	}
	err := big.Validate()
	require.ErrorContains(t, err, "must contain at most 1000 steps; got 1001")
	t.Logf("limit message: %v", err)
	wide := domain.TaskTemplate{Name: "too_wide", NamespaceName: "examples", Version: "1.0.0"}
	var deps []string
	for i := range domain.MaxStepDependencies + 1 {
		wide.Steps = append(wide.Steps, domain.StepDefinition{Name: fmt.Sprintf("p%d", i), Handler: domain.HandlerDefinition{Callable: "x"}})
		deps = append(deps, fmt.Sprintf("p%d", i))
	}
	wide.Steps = append(wide.Steps, domain.StepDefinition{Name: "join", Dependencies: deps, Handler: domain.HandlerDefinition{Callable: "x"}})
	err = wide.Validate()
	require.ErrorContains(t, err, "must list at most 100 dependencies; got 101")
	t.Logf("limit message: %v", err)
}
