package domain

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTaskRequestRejectsWhatPostgresCannotStore(t *testing.T) {
	t.Parallel()
	p := func(n int) *int { return &n }
	base := func() TaskRequest { return TaskRequest{Name: "n", Namespace: "examples", Version: "1.0.0"} }
	cases := []struct {
		name   string
		mutate func(*TaskRequest)
		field  string
		reason string
	}{
		{"NUL in name", func(r *TaskRequest) { r.Name = "a\x00b" }, "name", "NUL"},
		{"NUL in initiator", func(r *TaskRequest) { r.Initiator = "\x00" }, "initiator", "NUL"},
		{"NUL in a tag", func(r *TaskRequest) { r.Tags = []string{"ok", "x\x00"} }, "tags[1]", "NUL"},
		{"NUL in bypass step", func(r *TaskRequest) { r.BypassSteps = []string{"\x00"} }, "bypass_steps[0]", "NUL"},
		{"invalid UTF-8 in reason", func(r *TaskRequest) { r.Reason = "\xff" }, "reason", "UTF-8"},
		{"priority beyond int32", func(r *TaskRequest) { r.Priority = p(3000000000) }, "priority", "between"},
		{"priority below int32", func(r *TaskRequest) { r.Priority = p(-3000000000) }, "priority", "between"},
		{"negative claim timeout", func(r *TaskRequest) { r.ClaimTimeoutSeconds = p(-1) }, "claim_timeout_seconds", "between"},
		{"NUL escape in a context value", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":"x\u0000"}`) }, "context", "NUL"},
		{"NUL escape in a context key", func(r *TaskRequest) { r.Context = json.RawMessage(`{"\u0000":1}`) }, "context", "NUL"},
		{"lone high surrogate", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":"\ud800"}`) }, "context", "surrogate"},
		{"lone high surrogate then escape", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":"\ud800\n"}`) }, "context", "surrogate"},
		{"lone low surrogate", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":"\udc00"}`) }, "context", "surrogate"},
		{"number 1e400000", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":1e400000}`) }, "context", "out of range"},
		{"number -1e309 nested", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":[{"b":-1e309}]}`) }, "context", "out of range"},
		{"number 1e-400", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":1e-400}`) }, "context", "too small"},
		{"raw invalid UTF-8 in context", func(r *TaskRequest) { r.Context = json.RawMessage("{\"a\":\"\xff\"}") }, "context", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.mutate(&r)
			err := r.Validate()
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
			require.Contains(t, ve.Reason, tc.reason)
			require.Contains(t, strings.ToLower(ve.Reason), tc.field[:4], "the message names the field")
		})
	}
	ok := base()
	ok.Context = json.RawMessage(`{"pair":"\ud83d\ude00","esc":"\\u0000 is text","big":1e308,"zero":0.0e-999,"int":123456789012345678901234567890}`)
	ok.Priority = p(2147483647)
	require.NoError(t, ok.Validate(), "a surrogate pair, an escaped backslash, 0 and large finite numbers are fine")
}

func TestValidateText(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidateText("ns", "examples"))
	require.ErrorContains(t, ValidateText("ns", "%\x00"), "ns must not contain NUL")
	require.ErrorContains(t, ValidateText("version", "\xc3"), "version must be valid UTF-8")
}
