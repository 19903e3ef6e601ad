package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const envYAML = `
name: env_flow
namespace_name: ns
version: "1.0.0"
task_handler: {callable: Demo::Task, initialization: {mode: normal, region: eu}}
steps:
  - name: a
    handler: {callable: Demo::A, initialization: {url: "https://prod", retries: 2, nested: {k: v}}}
    timeout_seconds: 60
    retry: {retryable: true, limit: 5, backoff: linear, backoff_base_ms: 100}
  - name: b
    dependencies: [a]
    handler: {callable: Demo::B}
environments:
  test:
    task_handler: {initialization: {mode: test}}
    steps:
      - {name: ALL, timeout_seconds: 5}
      - name: a
        handler: {initialization: {url: "https://test", extra: true}}
        retry: {retryable: false, limit: 1}
      - {name: no_such_step, timeout_seconds: 1}
  development:
    steps:
      - {name: b, timeout_seconds: null, handler: null, retry: null}
      - {name: a, timeout_seconds: 7}
      - {name: ALL, timeout_seconds: 9}
`

func TestResolveForEnvironment(t *testing.T) {
	t.Parallel()
	base, err := ParseTemplateYAML([]byte(envYAML))
	require.NoError(t, err)
	require.NoError(t, base.Validate())

	tests := []struct {
		name  string
		env   string
		check func(t *testing.T, r TaskTemplate)
	}{
		{"unknown environment leaves everything", "production", func(t *testing.T, r TaskTemplate) {
			require.Equal(t, base, r)
		}},
		{"test environment", "test", func(t *testing.T, r TaskTemplate) {
			require.Equal(t, map[string]any{"mode": "test", "region": "eu"}, r.TaskHandler.Initialization)
			a, b := r.Steps[0], r.Steps[1]
			require.Equal(t, u32(5), a.TimeoutSeconds, "ALL applies to a")
			require.Equal(t, u32(5), b.TimeoutSeconds, "ALL applies to b")
			require.Equal(t, map[string]any{"url": "https://test", "retries": 2, "nested": map[string]any{"k": "v"}, "extra": true},
				a.Handler.Initialization, "initialization merged key by key, override wins")
			require.Equal(t, RetryConfiguration{Retryable: false, Limit: 1, Backoff: BackoffExponential}, a.Retry,
				"retry replaced as a whole, with present-retry defaults")
			require.Equal(t, DefaultRetryConfiguration(), b.Retry)
			require.Equal(t, map[string]any{}, b.Handler.Initialization)
			require.Equal(t, "Demo::A", a.Handler.Callable, "callable is never overridden")
		}},
		{"null overrides change nothing and later overrides win", "development", func(t *testing.T, r TaskTemplate) {
			require.Equal(t, u32(9), r.Steps[0].TimeoutSeconds)
			require.Equal(t, u32(9), r.Steps[1].TimeoutSeconds)
			require.Equal(t, base.Steps[1].Retry, r.Steps[1].Retry)
			require.Equal(t, base.Steps[1].Handler, r.Steps[1].Handler)
			require.Equal(t, base.TaskHandler, r.TaskHandler)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := base.ConfigurationJSON()
			require.NoError(t, err)

			tc.check(t, base.ResolveForEnvironment(tc.env))

			after, err := base.ConfigurationJSON()
			require.NoError(t, err)
			require.JSONEq(t, string(before), string(after), "the receiver is never mutated")
		})
	}
}

func TestResolveForEnvironment_SharesNothingWithReceiver(t *testing.T) {
	t.Parallel()
	base, err := ParseTemplateYAML([]byte(envYAML))
	require.NoError(t, err)
	before, err := base.ConfigurationJSON()
	require.NoError(t, err)

	r := base.ResolveForEnvironment("test")
	r.TaskHandler.Initialization["mode"] = "changed"
	r.Steps[0].Handler.Initialization["nested"].(map[string]any)["k"] = "changed"
	r.Steps[0].Dependencies = append(r.Steps[0].Dependencies, "x")
	r.Steps[1].Dependencies[0] = "changed"
	*r.Steps[0].TimeoutSeconds = 99
	*r.Steps[1].Retry.BackoffBaseMs = 1
	r.Environments["test"].Steps[1].Handler.Initialization["url"] = "changed"
	*r.Environments["test"].Steps[1].Retry = RetryConfiguration{}

	after, err := base.ConfigurationJSON()
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after))
}

func TestResolveForEnvironment_TaskHandlerOverrideWithoutHandler(t *testing.T) {
	t.Parallel()
	tpl := validTemplate()
	tpl.Environments["test"] = EnvironmentOverride{TaskHandler: &HandlerOverride{Initialization: map[string]any{"k": 1}}}
	r := tpl.ResolveForEnvironment("test")
	require.Nil(t, r.TaskHandler, "there is no task handler to merge into")
}

func TestResolveForEnvironment_NilInitializationGetsOverrideKeys(t *testing.T) {
	t.Parallel()
	tpl := TaskTemplate{
		Steps: []StepDefinition{{Name: "a"}},
		Environments: map[string]EnvironmentOverride{"test": {Steps: []StepOverride{
			{Name: "a", Handler: &HandlerOverride{Initialization: map[string]any{"list": []any{1, map[string]any{"x": 1}}}}},
			{Name: "a", Handler: &HandlerOverride{}},
		}}},
	}
	r := tpl.ResolveForEnvironment("test")
	require.Equal(t, map[string]any{"list": []any{1, map[string]any{"x": 1}}}, r.Steps[0].Handler.Initialization)
	require.Nil(t, tpl.Steps[0].Handler.Initialization)

	r.Steps[0].Handler.Initialization["list"].([]any)[1].(map[string]any)["x"] = 2
	require.Equal(t, 1, tpl.Environments["test"].Steps[0].Handler.Initialization["list"].([]any)[1].(map[string]any)["x"])
}

func TestClone_DeepCopiesEveryReference(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplateYAML([]byte(fullYAML))
	require.NoError(t, err)
	tpl.InputSchema = map[string]any{"list": []any{map[string]any{"a": 1}}, "strs": []string{"s"}, "odd": map[any]any{1: []any{"x"}}}
	before := tpl.Clone()

	c := tpl.Clone()
	*c.Description = "x"
	*c.Metadata.Author = "x"
	*c.Metadata.DocumentationURL = "x"
	c.Metadata.Tags = append(c.Metadata.Tags, "x")
	c.TaskHandler.Callable = "x"
	c.SystemDependencies.Secondary[0] = "x"
	*c.DomainEvents[0].Description = "x"
	c.DomainEvents[0].Schema.(map[string]any)["type"] = "x"
	c.InputSchema.(map[string]any)["list"].([]any)[0].(map[string]any)["a"] = 2
	c.InputSchema.(map[string]any)["strs"].([]string)[0] = "x"
	c.InputSchema.(map[string]any)["odd"].(map[any]any)[1].([]any)[0] = "y"
	*c.Steps[0].SystemDependency = "x"
	c.Steps[0].PublishesEvents[0] = "x"
	*c.Steps[0].Description = "x"
	*c.Environments["test"].Steps[0].TimeoutSeconds = 1
	c.Environments["test"].TaskHandler.Initialization["debug"] = false

	require.Equal(t, before, tpl)
}
