package domain

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// validTemplate is a small valid diamond; each validation case breaks one thing.
func validTemplate() TaskTemplate {
	step := func(name string, deps ...string) StepDefinition {
		return StepDefinition{Name: name, Handler: HandlerDefinition{Callable: "demo." + name}, Dependencies: deps}
	}
	return TaskTemplate{
		Name: "order_flow", NamespaceName: "fulfillment", Version: "1.0.0",
		Steps: []StepDefinition{step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c")},
	}.WithDefaults()
}

func TestValidate_ValidTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*TaskTemplate)
	}{
		{"diamond", func(*TaskTemplate) {}},
		{"prerelease and build version", func(t *TaskTemplate) { t.Version = "1.2.3-rc.1+b5" }},
		{"namespace of exactly 41 characters", func(t *TaskTemplate) { t.NamespaceName = strings.Repeat("n", 41) }},
		{"name of exactly 64 characters", func(t *TaskTemplate) { t.Name = strings.Repeat("x", 64) }},
		{"step name of exactly 128 characters", func(t *TaskTemplate) {
			t.Steps[0].Name = strings.Repeat("s", 128)
			t.Steps[1].Dependencies = []string{t.Steps[0].Name}
			t.Steps[2].Dependencies = nil
		}},
		{"Go-built retry left unset", func(t *TaskTemplate) { t.Steps[0].Retry = RetryConfiguration{} }},
		{"retry limit zero", func(t *TaskTemplate) { t.Steps[0].Retry.Limit = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := validTemplate()
			tc.mutate(&tpl)
			require.NoError(t, tpl.Validate())
		})
	}
}

func TestValidate_Rejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mutate     func(*TaskTemplate)
		wantField  string
		wantReason string
	}{
		{"empty name", func(t *TaskTemplate) { t.Name = "" }, "name", "must not be empty"},
		{"name too long", func(t *TaskTemplate) { t.Name = strings.Repeat("x", 65) }, "name", "at most 64 characters; got 65"},
		{"name with bad characters", func(t *TaskTemplate) { t.Name = "Order-Flow" }, "name", `"Order-Flow" must match ^[a-z0-9_]+$`},
		{"empty namespace", func(t *TaskTemplate) { t.NamespaceName = "" }, "namespace_name", "must not be empty"},
		{"namespace too long for a queue name", func(t *TaskTemplate) { t.NamespaceName = strings.Repeat("n", 42) }, "namespace_name",
			"at most 41 characters so that its queue name \"" + strings.Repeat("n", 42) + "_queue\" fits pgmq's 47-character limit (D-k); got 42"},
		{"namespace with bad characters", func(t *TaskTemplate) { t.NamespaceName = "Fulfil.ment" }, "namespace_name", `must match ^[a-z0-9_]{1,41}$`},
		{"empty version", func(t *TaskTemplate) { t.Version = "" }, "version", "must not be empty"},
		{"version with a slash", func(t *TaskTemplate) { t.Version = "1.0/2" }, "version", `"1.0/2" must start with a letter or digit`},
		{"version starting with a dot", func(t *TaskTemplate) { t.Version = ".1" }, "version", "must start with a letter or digit"},
		{"version too long", func(t *TaskTemplate) { t.Version = "1.0.0-alpha.beta.12" }, "version", "at most 16 characters; got 19"},
		{"no steps", func(t *TaskTemplate) { t.Steps = nil }, "steps", "must contain at least one step"},
		{"empty step name", func(t *TaskTemplate) { t.Steps[3].Name = "" }, "steps[3].name", "must not be empty"},
		{"step name too long", func(t *TaskTemplate) { t.Steps[3].Name = strings.Repeat("s", 129) }, "steps[3].name", "at most 128 characters; got 129"},
		{"duplicate step names", func(t *TaskTemplate) { t.Steps[2].Name = "b"; t.Steps[3].Dependencies = []string{"b"} }, "steps[2].name", `duplicate step name "b" (first defined at steps[1])`},
		{"missing handler callable", func(t *TaskTemplate) { t.Steps[2].Handler.Callable = " " }, "steps[2].handler.callable", "must not be empty"},
		{"unknown dependency", func(t *TaskTemplate) { t.Steps[3].Dependencies = []string{"b", "zzz"} }, "steps[3].dependencies[1]", `unknown step "zzz"`},
		{"self dependency", func(t *TaskTemplate) { t.Steps[1].Dependencies = []string{"b"} }, "steps[1].dependencies[0]", `step "b" depends on itself`},
		{"duplicate dependency", func(t *TaskTemplate) { t.Steps[3].Dependencies = []string{"b", "c", "b"} }, "steps[3].dependencies[2]", `duplicate dependency "b"`},
		{"negative retry limit", func(t *TaskTemplate) { t.Steps[1].Retry.Limit = -1 }, "steps[1].retry.limit", "must not be negative; got -1"},
		{"retry limit beyond the integer column", func(t *TaskTemplate) { t.Steps[1].Retry.Limit = 1 << 40 }, "steps[1].retry.limit", "must be at most 2147483647"},
		{"unknown backoff kind", func(t *TaskTemplate) { t.Steps[0].Retry.Backoff = "quadratic" }, "steps[0].retry.backoff", `unknown backoff kind "quadratic" (want none, linear, exponential or fibonacci)`},
		{"cycle", func(t *TaskTemplate) { t.Steps[0].Dependencies = []string{"d"} }, "dependencies", "cycle detected: a -> b -> d -> a"},
		{"environment override with negative retry limit", func(t *TaskTemplate) {
			t.Environments["test"] = EnvironmentOverride{Steps: []StepOverride{{Name: "ALL", Retry: &RetryConfiguration{Limit: -2, Backoff: BackoffLinear}}}}
		}, "environments.test.steps[0].retry.limit", "must not be negative; got -2"},
		{"environment override with unknown backoff", func(t *TaskTemplate) {
			t.Environments["test"] = EnvironmentOverride{Steps: []StepOverride{{Name: "a"}, {Name: "b", Retry: &RetryConfiguration{Limit: 1, Backoff: "soon"}}}}
		}, "environments.test.steps[1].retry.backoff", `unknown backoff kind "soon"`},
		{"environment override without step name", func(t *TaskTemplate) {
			t.Environments["production"] = EnvironmentOverride{Steps: []StepOverride{{TimeoutSeconds: u32(3)}}}
		}, "environments.production.steps[0].name", `must not be empty (use a step name or "ALL")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := validTemplate()
			tc.mutate(&tpl)
			err := tpl.Validate()
			require.Error(t, err)

			var tve *TemplateValidationError
			require.ErrorAs(t, err, &tve)
			require.Len(t, tve.Problems, 1, "exactly one problem expected, got %v", tve.Messages())
			require.Equal(t, tc.wantField, tve.Problems[0].Field)
			require.Contains(t, tve.Problems[0].Reason, tc.wantReason)
			require.Contains(t, err.Error(), tc.wantField+": ")

			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "problems must be reachable with errors.As")
		})
	}
}

func TestValidate_ListsEveryProblem(t *testing.T) {
	t.Parallel()
	tpl := TaskTemplate{
		Name: "", NamespaceName: "Bad-NS", Version: "x y",
		Steps: []StepDefinition{
			{Name: "a", Dependencies: []string{"c"}},
			{Name: "b", Handler: HandlerDefinition{Callable: "h"}, Dependencies: []string{"a"}},
			{Name: "c", Handler: HandlerDefinition{Callable: "h"}, Dependencies: []string{"b", "ghost"}},
		},
	}
	err := tpl.Validate()
	var tve *TemplateValidationError
	require.ErrorAs(t, err, &tve)
	require.Equal(t, []string{
		"name: must not be empty",
		`namespace_name: "Bad-NS" must match ^[a-z0-9_]{1,41}$ (lower-case letters, digits, underscores) so that its queue name "Bad-NS_queue" is a valid pgmq queue name (D-k)`,
		`version: "x y" must start with a letter or digit and use only letters, digits and . _ + - (e.g. "1.0" or "1.0.0"; quote it in YAML)`,
		"steps[0].handler.callable: must not be empty",
		`steps[2].dependencies[1]: unknown step "ghost"`,
		"dependencies: cycle detected: a -> b -> c -> a (a -> b: b depends on a)",
	}, tve.Messages())
	require.True(t, strings.HasPrefix(err.Error(), "invalid task template Bad-NS//x y: name: must not be empty; "))
}

func TestValidate_CyclePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		deps map[string][]string // step → dependencies, steps in order a..e
		want []string
	}{
		{"two-step cycle", map[string][]string{"a": {"b"}, "b": {"a"}}, []string{"cycle detected: a -> b -> a"}},
		{"cycle off a root", map[string][]string{"b": {"a", "d"}, "c": {"b"}, "d": {"c"}},
			[]string{"cycle detected: b -> c -> d -> b"}},
		{"two independent cycles", map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}},
			[]string{"cycle detected: a -> b -> a", "cycle detected: c -> d -> c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := TaskTemplate{Name: "x", NamespaceName: "ns", Version: "1.0.0"}
			for _, n := range []string{"a", "b", "c", "d", "e"} {
				tpl.Steps = append(tpl.Steps, StepDefinition{Name: n, Handler: HandlerDefinition{Callable: "h"}, Dependencies: tc.deps[n]})
			}
			var tve *TemplateValidationError
			require.ErrorAs(t, tpl.Validate(), &tve)
			var got []string
			for _, p := range tve.Problems {
				require.Equal(t, "dependencies", p.Field)
				got = append(got, strings.TrimSuffix(p.Reason, " (a -> b: b depends on a)"))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidateNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ns      string
		wantErr string
	}{
		{"examples", ""},
		{"a", ""},
		{"with_digits_123", ""},
		{strings.Repeat("z", 41), ""},
		{"", "namespace: must not be empty"},
		{strings.Repeat("z", 42), "fits pgmq's 47-character limit (D-k); got 42"},
		{"Upper", `"Upper" must match ^[a-z0-9_]{1,41}$`},
		{"dash-ed", "is a valid pgmq queue name (D-k)"},
		{"dot.ted", "must match"},
		{"spa ce", "must match"},
	}
	for _, tc := range tests {
		t.Run(tc.ns, func(t *testing.T) {
			err := ValidateNamespace(tc.ns)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.LessOrEqual(t, len(QueueName(tc.ns)), MaxQueueNameLength)
				return
			}
			var ve *ValidationError
			require.True(t, errors.As(err, &ve))
			require.Equal(t, "namespace", ve.Field)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}
