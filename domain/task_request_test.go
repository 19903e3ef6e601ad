package domain

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestTaskRequestApplyDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    TaskRequest
		wantCtx string
	}{
		{"minimal body", `{"name":"n","namespace":"ns","version":"1.0.0"}`,
			TaskRequest{Name: "n", Namespace: "ns", Version: "1.0.0", Initiator: "UNKNOWN", SourceSystem: "UNKNOWN", Reason: "UNKNOWN",
				Tags: []string{}, BypassSteps: []string{}, Priority: intp(0), ClaimTimeoutSeconds: intp(60)}, `{}`},
		{"null context and priorities", `{"name":"n","namespace":"ns","version":"1.0.0","context":null,"priority":null,"claim_timeout_seconds":null}`,
			TaskRequest{Name: "n", Namespace: "ns", Version: "1.0.0", Initiator: "UNKNOWN", SourceSystem: "UNKNOWN", Reason: "UNKNOWN",
				Tags: []string{}, BypassSteps: []string{}, Priority: intp(0), ClaimTimeoutSeconds: intp(60)}, `{}`},
		{"explicit values are kept", `{"name":"n","namespace":"ns","version":"1.0.0","context":{"b":1,"a":2},"initiator":"me",
			"source_system":"api","reason":"why","tags":["t"],"bypass_steps":["s"],"priority":3,"claim_timeout_seconds":5,
			"requested_at":"2025-08-27T12:00:00","status":"PENDING","complete":false,"options":{"x":1}}`,
			TaskRequest{Name: "n", Namespace: "ns", Version: "1.0.0", Initiator: "me", SourceSystem: "api", Reason: "why",
				Tags: []string{"t"}, BypassSteps: []string{"s"}, Priority: intp(3), ClaimTimeoutSeconds: intp(5),
				RequestedAt: str("2025-08-27T12:00:00"), Status: str("PENDING"), Complete: boolp(false), Options: json.RawMessage(`{"x":1}`)},
			`{"b":1,"a":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r TaskRequest
			require.NoError(t, json.Unmarshal([]byte(tc.body), &r))
			r.ApplyDefaults()
			require.JSONEq(t, tc.wantCtx, string(r.Context))
			r.Context = nil
			require.Equal(t, tc.want, r)
			require.NoError(t, r.Validate())
		})
	}
}

func intp(v int) *int    { return &v }
func boolp(v bool) *bool { return &v }

// nested builds {"k":{"k":...{"k":1}}} with depth objects.
func nested(depth int) string {
	return strings.Repeat(`{"k":`, depth) + "1" + strings.Repeat("}", depth)
}

func objectWithKeys(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestTaskRequestValidate(t *testing.T) {
	t.Parallel()
	valid := func() TaskRequest {
		return TaskRequest{Name: "order", Namespace: "fulfillment", Version: "1.0.0"}
	}
	long := strings.Repeat("x", MaxRequestActorLength+1)
	tests := []struct {
		name       string
		mutate     func(*TaskRequest)
		wantField  string
		wantReason string // "" = valid
	}{
		{"valid without defaults", func(*TaskRequest) {}, "", ""},
		{"actor of exactly 128 characters", func(r *TaskRequest) { r.Initiator = strings.Repeat("é", 128) }, "", ""},
		{"context at the depth limit", func(r *TaskRequest) { r.Context = json.RawMessage(nested(MaxContextDepth)) }, "", ""},
		{"context with 1000 keys", func(r *TaskRequest) { r.Context = json.RawMessage(objectWithKeys(1000)) }, "", ""},
		{"context array of 1000 items in an object", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + `]}`)
		}, "", ""},
		{"context string of 10000 characters", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"s":"` + strings.Repeat("ü", MaxContextStringLength) + `"}`)
		}, "", ""},
		{"empty name", func(r *TaskRequest) { r.Name = "" }, "name", "Task name cannot be empty"},
		{"blank name", func(r *TaskRequest) { r.Name = "  " }, "name", "Task name cannot be empty"},
		{"empty namespace", func(r *TaskRequest) { r.Namespace = "" }, "namespace", "Task namespace cannot be empty"},
		{"empty version", func(r *TaskRequest) { r.Version = "" }, "version", "Task version cannot be empty"},
		{"namespace breaking D-k", func(r *TaskRequest) { r.Namespace = "Fulfillment" }, "namespace", `Task namespace "Fulfillment" must match ^[a-z0-9_]{1,41}$`},
		{"namespace too long", func(r *TaskRequest) { r.Namespace = strings.Repeat("n", 42) }, "namespace", "at most 41 characters"},
		{"initiator too long", func(r *TaskRequest) { r.Initiator = long }, "initiator", "initiator must be at most 128 characters; got 129"},
		{"source_system too long", func(r *TaskRequest) { r.SourceSystem = long }, "source_system", "at most 128 characters"},
		{"reason too long", func(r *TaskRequest) { r.Reason = long }, "reason", "at most 128 characters"},
		{"context is an array", func(r *TaskRequest) { r.Context = json.RawMessage(`[1,2]`) }, "context", "Context must be a JSON object"},
		{"context is a string", func(r *TaskRequest) { r.Context = json.RawMessage(`"x"`) }, "context", "Context must be a JSON object"},
		{"context is invalid JSON", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":}`) }, "context", "Context is not valid JSON"},
		{"context is truncated", func(r *TaskRequest) { r.Context = json.RawMessage(`{"a":[1`) }, "context", "Context is not valid JSON"},
		{"context has trailing data", func(r *TaskRequest) { r.Context = json.RawMessage(`{} {}`) }, "context", "single JSON object"},
		{"context too large", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"s":"` + strings.Repeat("a", MaxContextBytes) + `"}`)
		}, "context", "Context exceeds maximum size of 1048576 bytes"},
		{"context too deep", func(r *TaskRequest) { r.Context = json.RawMessage(nested(MaxContextDepth + 1)) }, "context", "maximum nesting depth of 10"},
		{"context too deep through arrays", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"a":` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}`)
		}, "context", "maximum nesting depth of 10"},
		{"context object with too many keys", func(r *TaskRequest) { r.Context = json.RawMessage(objectWithKeys(1001)) },
			"context", "Context object exceeds maximum of 1000 keys"},
		{"context array with too many items", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"a":[` + strings.TrimSuffix(strings.Repeat("{},", 1001), ",") + `]}`)
		}, "context", "Context array exceeds maximum of 1000 items"},
		{"context string too long", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"a":["` + strings.Repeat("x", MaxContextStringLength+1) + `"]}`)
		}, "context", "Context string exceeds maximum length of 10000 characters"},
		{"context key too long", func(r *TaskRequest) {
			r.Context = json.RawMessage(`{"` + strings.Repeat("k", MaxContextStringLength+1) + `":1}`)
		}, "context", "Context key exceeds maximum length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mutate(&r)
			err := r.Validate()
			if tc.wantReason == "" {
				require.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.wantField, ve.Field)
			require.Contains(t, ve.Reason, tc.wantReason)
		})
	}
}

func TestIdentityHash(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("0198f0c2-1111-7000-8000-000000000001")
	other := uuid.MustParse("0198f0c2-1111-7000-8000-000000000002")

	h1, err := IdentityHash(id, json.RawMessage(`{"b":{"y":1,"x":[2,{"q":1,"p":"<&>"}]},"a":1.50}`))
	require.NoError(t, err)
	h2, err := IdentityHash(id, json.RawMessage("{ \"a\": 1.50,\n \"b\": {\"x\": [2, {\"p\": \"<&>\", \"q\": 1}], \"y\": 1} }"))
	require.NoError(t, err)
	require.Equal(t, h1, h2, "key order and whitespace do not matter")
	require.Regexp(t, `^[0-9a-f]{64}$`, h1)

	// Golden: sha256("<uuid>" + canonical JSON), canonical = sorted, compact, numbers as written, no HTML escaping.
	canon, err := CanonicalJSON(json.RawMessage(`{"b":{"y":1,"x":[2,{"q":1,"p":"<&>"}]},"a":1.50}`))
	require.NoError(t, err)
	require.Equal(t, `{"a":1.50,"b":{"x":[2,{"p":"<&>","q":1}],"y":1}}`, string(canon))
	empty, err := IdentityHash(id, json.RawMessage(`{}`))
	require.NoError(t, err)
	// printf '%s' '0198f0c2-1111-7000-8000-000000000001{}' | sha256sum
	require.Equal(t, "2b6bf9ed4376ce26313d627334b12e8a88243affa6f6922a3bab0460b16ecdb9", empty)
	// printf '%s' '<uuid>{"a":1.50,"b":{"x":[2,{"p":"<&>","q":1}],"y":1}}' | sha256sum
	require.Equal(t, "2bbd60c3d13cdcceaaabf1a2735a06653a1876183be20bb56717712d6392a81a", h1)

	h3, err := IdentityHash(other, json.RawMessage(`{"a":1.50,"b":{"x":[2,{"p":"<&>","q":1}],"y":1}}`))
	require.NoError(t, err)
	require.NotEqual(t, h1, h3, "the named task is part of the identity")
	h4, err := IdentityHash(id, json.RawMessage(`{"a":1.5,"b":{"x":[2,{"p":"<&>","q":1}],"y":1}}`))
	require.NoError(t, err)
	require.NotEqual(t, h1, h4, "different context, different hash")

	absent, err := IdentityHash(id, nil)
	require.NoError(t, err)
	require.Equal(t, empty, absent, "absent context hashes as the default {}")

	_, err = IdentityHash(id, json.RawMessage(`{"a":`))
	require.ErrorContains(t, err, "identity hash: canonical JSON")
}
