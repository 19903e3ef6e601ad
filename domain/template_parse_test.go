package domain

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const minimalYAML = `
name: minimal
namespace_name: ns
version: "1.0.0"
loaded_from: /somewhere/ignored.yaml
steps:
  - name: a
    handler: {callable: "Demo::A"}
`

func u64(v uint64) *uint64 { return &v }
func u32(v uint32) *uint32 { return &v }
func str(v string) *string { return &v }

func TestParseTemplateYAML_MaterialisesDefaults(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplateYAML([]byte(minimalYAML))
	require.NoError(t, err)

	require.Equal(t, "minimal", tpl.Name)
	require.Equal(t, SystemDependencies{Primary: "default", Secondary: []string{}}, tpl.SystemDependencies)
	require.Equal(t, []DomainEventDefinition{}, tpl.DomainEvents)
	require.Equal(t, map[string]EnvironmentOverride{}, tpl.Environments)
	require.Nil(t, tpl.TaskHandler)
	require.Nil(t, tpl.Metadata)
	require.Len(t, tpl.Steps, 1)
	s := tpl.Steps[0]
	require.Equal(t, map[string]any{}, s.Handler.Initialization)
	require.Equal(t, []string{}, s.Dependencies)
	require.Equal(t, []string{}, s.PublishesEvents)
	require.Equal(t, RetryConfiguration{
		Retryable: true, Limit: 3, Backoff: BackoffExponential,
		BackoffBaseMs: u64(1000), MaxBackoffMs: u64(30000),
	}, s.Retry)
	require.NoError(t, tpl.Validate())
}

func TestParseTemplateYAML_RetryDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		retry string
		want  RetryConfiguration
	}{
		{"absent key gets the full default", ``,
			RetryConfiguration{Retryable: true, Limit: 3, Backoff: BackoffExponential, BackoffBaseMs: u64(1000), MaxBackoffMs: u64(30000)}},
		{"null behaves like absent", `retry: null`,
			RetryConfiguration{Retryable: true, Limit: 3, Backoff: BackoffExponential, BackoffBaseMs: u64(1000), MaxBackoffMs: u64(30000)}},
		{"empty object: defaults inside, bounds null", `retry: {}`,
			RetryConfiguration{Retryable: true, Limit: 3, Backoff: BackoffExponential}},
		{"partial object keeps explicit values", `retry: {retryable: false, limit: 5, backoff_base_ms: 500}`,
			RetryConfiguration{Retryable: false, Limit: 5, Backoff: BackoffExponential, BackoffBaseMs: u64(500)}},
		{"explicit backoff kind", `retry: {backoff: fibonacci, max_backoff_ms: 9}`,
			RetryConfiguration{Retryable: true, Limit: 3, Backoff: BackoffFibonacci, MaxBackoffMs: u64(9)}},
		{"limit zero is kept", `retry: {limit: 0, backoff: none}`,
			RetryConfiguration{Retryable: true, Limit: 0, Backoff: BackoffNone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: x\nnamespace_name: ns\nversion: \"1.0.0\"\nsteps:\n  - name: a\n    handler: {callable: c}\n"
			if tc.retry != "" {
				doc += "    " + tc.retry + "\n"
			}
			tpl, err := ParseTemplateYAML([]byte(doc))
			require.NoError(t, err)
			require.Equal(t, tc.want, tpl.Steps[0].Retry)

			// The JSON configuration reads back to the same policy.
			raw, err := tpl.ConfigurationJSON()
			require.NoError(t, err)
			back, err := ParseTemplateJSON(raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, back.Steps[0].Retry)
		})
	}
}

func TestParseTemplateJSON_RetryDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		retry string
		want  RetryConfiguration
	}{
		{"absent", ``, DefaultRetryConfiguration()},
		{"null", `,"retry":null`, DefaultRetryConfiguration()},
		{"empty object", `,"retry":{}`, RetryConfiguration{Retryable: true, Limit: 3, Backoff: BackoffExponential}},
		{"explicit", `,"retry":{"retryable":false,"limit":1,"backoff":"linear","backoff_base_ms":null}`,
			RetryConfiguration{Retryable: false, Limit: 1, Backoff: BackoffLinear}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"name":"x","namespace_name":"ns","version":"1.0.0","steps":[{"name":"a","handler":{"callable":"c"}` + tc.retry + `}]}`
			tpl, err := ParseTemplateJSON([]byte(doc))
			require.NoError(t, err)
			require.Equal(t, tc.want, tpl.Steps[0].Retry)
			require.Equal(t, map[string]any{}, tpl.Steps[0].Handler.Initialization)
			require.Equal(t, "default", tpl.SystemDependencies.Primary)
		})
	}
}

func TestParseTemplate_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		parse   func([]byte) (TaskTemplate, error)
		doc     string
		wantErr string
	}{
		{"empty yaml", ParseTemplateYAML, "  \n", "document is empty"},
		{"yaml list at top level", ParseTemplateYAML, "- a\n- b\n", "parse task template YAML"},
		{"yaml unknown backoff", ParseTemplateYAML,
			"name: x\nsteps:\n  - name: a\n    retry: {backoff: quadratic}\n", `line 4: retry.backoff: unknown backoff kind "quadratic"`},
		{"yaml unknown backoff in environment override", ParseTemplateYAML,
			"name: x\nenvironments:\n  test:\n    steps:\n      - {name: ALL, retry: {backoff: Exponential}}\n", `unknown backoff kind "Exponential"`},
		{"yaml wrong type", ParseTemplateYAML, "name: x\nsteps: 5\n", "parse task template YAML"},
		{"empty json", ParseTemplateJSON, "", "document is empty"},
		{"bad json", ParseTemplateJSON, "{", "parse task template JSON"},
		{"json unknown backoff", ParseTemplateJSON, `{"steps":[{"name":"a","retry":{"backoff":"random"}}]}`, `retry.backoff: unknown backoff kind "random"`},
		{"json wrong retry type", ParseTemplateJSON, `{"steps":[{"name":"a","retry":{"limit":"three"}}]}`, "parse task template JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.parse([]byte(tc.doc))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// An unquoted 1.0 keeps its text (yaml.v3 decodes the scalar into the
// string as written) and is a valid version per the contract.
func TestParseTemplateYAML_UnquotedVersionKeepsItsText(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplateYAML([]byte("name: x\nnamespace_name: ns\nversion: 1.0\nsteps:\n  - name: a\n    handler: {callable: c}\n"))
	require.NoError(t, err)
	require.Equal(t, "1.0", tpl.Version)
	require.NoError(t, tpl.Validate())
}

const fullYAML = `
name: full
namespace_name: ns
version: "2.1.0-rc.1+b7"
description: everything set
metadata:
  author: me
  documentation_url: https://example.com
task_handler:
  callable: Demo::Task
system_dependencies: {primary: payments, secondary: [mail]}
domain_events:
  - {name: order.done, description: done, schema: {type: object}}
input_schema: {type: object, properties: {n: {type: integer}}}
steps:
  - name: a
    description: first
    handler: {callable: Demo::A, initialization: {multiplier: 2, nested: {k: [1, 2]}}}
    system_dependency: payments
    publishes_events: [order.done]
    retry: {retryable: false, limit: 1, backoff: none}
    timeout_seconds: 30
  - name: b
    dependencies: [a]
    handler: {callable: Demo::B}
environments:
  test:
    task_handler: {initialization: {debug: true}}
    steps:
      - {name: ALL, timeout_seconds: 5}
`

func TestConfigurationJSON_AllFieldsPresentAndNullable(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplateYAML([]byte(minimalYAML))
	require.NoError(t, err)
	raw, err := tpl.ConfigurationJSON()
	require.NoError(t, err)
	require.JSONEq(t, `{
	  "name":"minimal","namespace_name":"ns","version":"1.0.0",
	  "description":null,"metadata":null,"task_handler":null,
	  "system_dependencies":{"primary":"default","secondary":[]},
	  "domain_events":[],"input_schema":null,
	  "steps":[{"name":"a","description":null,
	    "handler":{"callable":"Demo::A","initialization":{}},
	    "system_dependency":null,"dependencies":[],
	    "retry":{"retryable":true,"limit":3,"backoff":"exponential","backoff_base_ms":1000,"max_backoff_ms":30000},
	    "timeout_seconds":null,"publishes_events":[]}],
	  "environments":{}
	}`, string(raw))
}

func TestConfigurationJSON_RoundTrip(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplateYAML([]byte(fullYAML))
	require.NoError(t, err)
	require.NoError(t, tpl.Validate())
	require.Equal(t, []string{}, tpl.Metadata.Tags)
	require.Equal(t, map[string]any{}, tpl.TaskHandler.Initialization)

	raw, err := tpl.ConfigurationJSON()
	require.NoError(t, err)
	back, err := ParseTemplateJSON(raw)
	require.NoError(t, err)
	raw2, err := back.ConfigurationJSON()
	require.NoError(t, err)
	require.JSONEq(t, string(raw), string(raw2))

	var generic map[string]any
	require.NoError(t, json.Unmarshal(raw, &generic))
	require.Equal(t, "2.1.0-rc.1+b7", generic["version"])
	require.Equal(t, map[string]any{"type": "object"}, generic["domain_events"].([]any)[0].(map[string]any)["schema"])
	require.Equal(t, back.Steps[0].Retry, RetryConfiguration{Retryable: false, Limit: 1, Backoff: BackoffNone})
	require.Equal(t, u32(5), back.Environments["test"].Steps[0].TimeoutSeconds)
}

func TestConfigurationJSON_UnencodableValue(t *testing.T) {
	t.Parallel()
	tpl := TaskTemplate{Name: "x", InputSchema: map[string]any{"f": func() {}}}
	_, err := tpl.ConfigurationJSON()
	require.ErrorContains(t, err, "encode configuration of template")
}

func TestWithDefaults_DoesNotMutateReceiver(t *testing.T) {
	t.Parallel()
	tpl := TaskTemplate{Name: "x", Steps: []StepDefinition{{Name: "a"}}}
	got := tpl.WithDefaults()
	require.Equal(t, DefaultRetryConfiguration(), got.Steps[0].Retry)
	require.Equal(t, RetryConfiguration{}, tpl.Steps[0].Retry)
	require.Nil(t, tpl.Steps[0].Dependencies)
}

func TestBackoffKindValid(t *testing.T) {
	t.Parallel()
	for _, k := range []BackoffKind{BackoffNone, BackoffLinear, BackoffExponential, BackoffFibonacci} {
		require.True(t, k.Valid(), k)
	}
	for _, k := range []BackoffKind{"", "EXPONENTIAL", "quadratic"} {
		require.False(t, k.Valid(), k)
	}
}
