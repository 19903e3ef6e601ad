package domain

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzValidateContext checks that the streaming context walker never panics
// and never accepts what is not a single valid JSON object.
func FuzzValidateContext(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":[1,{"b":null}]}`, `[]`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{} {}`, `{"a":[1`, `"s"`, ``, `{"a":1}x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := ValidateContext(data)
		if err == nil {
			require.True(t, json.Valid(data), "accepted invalid JSON %q", data)
			require.Equal(t, byte('{'), bytes.TrimSpace(data)[0], "accepted a non-object %q", data)
		}
	})
}

// FuzzParseTemplateYAML checks that arbitrary input gives a template or an
// error, never a panic, and that whatever parses also serialises and validates.
func FuzzParseTemplateYAML(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte(fullYAML))
	f.Add([]byte(envYAML))
	f.Add([]byte("steps: [{name: a, dependencies: [a, b], retry: {limit: -1}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := ParseTemplateYAML(data)
		if err != nil {
			return
		}
		_ = tpl.Validate()
		_ = tpl.ResolveForEnvironment("test")
		_, _ = tpl.ConfigurationJSON()
	})
}

// FuzzParseStepExecutionResult checks the tolerant reader never panics.
func FuzzParseStepExecutionResult(f *testing.F) {
	f.Add([]byte(`{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"status":"x","result":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := ParseStepExecutionResult(data)
		if ok {
			_, _ = RetryDelay(r, goldenDone)
		}
		_ = UnwrapDependencyResult(data)
	})
}
