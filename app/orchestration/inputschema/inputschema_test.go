package inputschema

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tasker-systems/tasker-go/domain"
)

// evenSchema is the examples' input_schema, decoded from YAML as the
// template parser does.
func evenSchema(t *testing.T) any {
	t.Helper()
	var s any
	require.NoError(t, yaml.Unmarshal([]byte(`
type: object
required: [even_number]
properties:
  even_number: {type: integer, multipleOf: 2}
  tags: {type: array, items: {type: string}}
  "a/b": {type: boolean}
additionalProperties: true
`), &s))
	return s
}

func TestValidate(t *testing.T) {
	t.Parallel()
	v := New()
	schema := evenSchema(t)
	tests := []struct {
		name        string
		context     string
		wantField   string
		wantPointer string
		wantReason  string
	}{
		{name: "valid", context: `{"even_number": 4}`},
		{name: "valid with extra keys", context: `{"even_number": 4, "other": "x"}`},
		{name: "wrong type", context: `{"even_number": "x"}`, wantField: "context/even_number",
			wantPointer: `"/even_number"`, wantReason: "got string, want integer"},
		{name: "missing required key", context: `{}`, wantField: "context",
			wantPointer: `""`, wantReason: "missing property 'even_number'"},
		{name: "odd number", context: `{"even_number": 3}`, wantField: "context/even_number",
			wantPointer: `"/even_number"`, wantReason: "multipleOf: got 3, want 2"},
		{name: "array item", context: `{"even_number": 2, "tags": ["a", 7]}`, wantField: "context/tags/1",
			wantPointer: `"/tags/1"`, wantReason: "got number, want string"},
		{name: "escaped key", context: `{"even_number": 2, "a/b": 1}`, wantField: "context/a~1b",
			wantPointer: `"/a~1b"`, wantReason: "want boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Validate(schema, json.RawMessage(tt.context))
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.wantField, ve.Field)
			require.Contains(t, ve.Reason, "input_schema at "+tt.wantPointer)
			require.Contains(t, ve.Reason, tt.wantReason)
		})
	}
}

func TestValidateWithoutSchemaAndBadSchema(t *testing.T) {
	t.Parallel()
	v := New()
	require.NoError(t, v.Validate(nil, json.RawMessage(`{"anything": 1}`)))
	err := v.Validate(map[string]any{"type": 5}, json.RawMessage(`{}`))
	var ve *domain.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "input_schema", ve.Field)
	require.Contains(t, ve.Reason, "not a valid JSON Schema")
}

func TestValidateReportsHowManyMoreAndBadInput(t *testing.T) {
	t.Parallel()
	v := New()
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"a": map[string]any{"type": "integer"}, "b": map[string]any{"type": "integer"}}}
	err := v.Validate(schema, json.RawMessage(`{"a":"x","b":"y"}`))
	var ve *domain.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "context/a", ve.Field, "the first failure by pointer")
	require.Contains(t, ve.Reason, "(and 1 more)")

	require.NoError(t, v.Validate(schema, nil), "an absent context is {}")
	err = v.Validate(schema, json.RawMessage(`{"a":`))
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Reason, "context is not valid JSON")

	err = v.Validate(map[string]any{"bad": make(chan int)}, json.RawMessage(`{}`))
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Reason, "input_schema is not JSON")
}

func TestCompiledSchemasAreCachedAndBounded(t *testing.T) {
	t.Parallel()
	v := New()
	for i := range MaxCachedSchemas + 5 {
		require.NoError(t, v.Validate(map[string]any{"type": "object", "title": fmt.Sprint(i)}, json.RawMessage(`{}`)))
	}
	require.LessOrEqual(t, len(v.cache), MaxCachedSchemas)
	s := map[string]any{"type": "object"}
	require.NoError(t, v.Validate(s, json.RawMessage(`{}`)))
	n := len(v.cache)
	require.NoError(t, v.Validate(s, json.RawMessage(`{}`)))
	require.Equal(t, n, len(v.cache), "the same schema compiles once")
}
