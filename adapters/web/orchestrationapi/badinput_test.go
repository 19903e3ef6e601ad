package orchestrationapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
)

// TestInputPostgresRejectsIs400 is issue 13 defect 1 against the real
// database: each of these used to reach PostgreSQL and answer 500 with an
// ERROR log; now each is a 400 BAD_REQUEST naming the field, and nothing is
// written.
func TestInputPostgresRejectsIs400(t *testing.T) {
	f := setup(t, web.Config{})
	before := rowCounts(t, f.db)
	const head = `{"name":"linear_workflow","namespace":"examples","version":"1.0.0"`
	task, step := uuid.NewString(), uuid.NewString()
	cases := []struct {
		name, method, path, body, field string
	}{
		{"NUL in a context value", "POST", "/v1/tasks", head + `,"context":{"a":"x\u0000"}}`, "Context"},
		{"NUL in a context key", "POST", "/v1/tasks", head + `,"context":{"\u0000":1}}`, "Context"},
		{"NUL in initiator", "POST", "/v1/tasks", head + `,"initiator":"a\u0000"}`, "initiator"},
		{"NUL in a tag", "POST", "/v1/tasks", head + `,"tags":["\u0000"]}`, "tags[0]"},
		{"NUL in name", "POST", "/v1/tasks", `{"name":"linear\u0000","namespace":"examples","version":"1.0.0"}`, "name"},
		{"lone surrogate in context", "POST", "/v1/tasks", head + `,"context":{"a":"\ud800"}}`, "Context"},
		{"number 1e400000 in context", "POST", "/v1/tasks", head + `,"context":{"a":1e400000}}`, "Context"},
		{"priority 3000000000", "POST", "/v1/tasks", head + `,"priority":3000000000}`, "priority"},
		{"NUL in list filter", "GET", "/v1/tasks?namespace=%00", "", "namespace"},
		{"NUL in template path", "GET", "/v1/templates/examples/%00/1.0.0", "", "name"},
		{"NUL in template filter", "GET", "/v1/templates?namespace=a%00", "", "namespace"},
		{"NUL in resolved_by", "PATCH", "/v1/tasks/" + task + "/workflow_steps/" + step,
			`{"resolution_data":{},"resolved_by":"\u0000","reason":"r"}`, "resolved_by"},
		{"NUL in resolution_data", "PATCH", "/v1/tasks/" + task + "/workflow_steps/" + step,
			`{"resolution_data":{"a":"\u0000"},"resolved_by":"ops","reason":"r"}`, "resolution_data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.method, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
			var e apiError
			require.NoError(t, json.Unmarshal(body, &e))
			require.Equal(t, web.CodeBadRequest, e.Error.Code)
			require.Contains(t, e.Error.Message, tc.field, "the message names the field")
			t.Logf("%s %s → %d %s", tc.method, tc.path, resp.StatusCode, body)
		})
	}
	require.Equal(t, before, rowCounts(t, f.db), "nothing written")
}
