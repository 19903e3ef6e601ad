package orchestrationapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
)

// validatingTasks applies the service's request rules (defaults, then
// Validate) without a database, so the fuzzer explores decoding and
// validation together.
type validatingTasks struct{ fakeTasks }

func (v *validatingTasks) CreateTaskIdempotent(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error) {
	req.ApplyDefaults()
	if err := req.Validate(); err != nil {
		return domain.TaskCreationResponse{}, err
	}
	return v.fakeTasks.CreateTaskIdempotent(ctx, req, key)
}

// FuzzCreateTaskRequest feeds arbitrary bodies to POST /v1/tasks: the
// answer is never a 5xx (bad input is a 4xx, issue 13), an error is the
// §7.1 body, and an accepted body decodes to a request that validates.
func FuzzCreateTaskRequest(f *testing.F) {
	for _, seed := range []string{
		validCreate, `{"name":"a","namespace":"b","version":"1","context":{"x":"\u0000"}}`,
		`{"name":"a","namespace":"b","version":"1","context":{"x":"\ud800"}}`,
		`{"name":"a","namespace":"b","version":"1","context":{"x":1e400000}}`,
		`{"name":"a","namespace":"b","version":"1","priority":3000000000}`,
		`{"name":"a","namespace":"b","version":"1","tags":["\u0000"]}`, `[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	s := web.New(web.Config{}, web.Deps{Tasks: &validatingTasks{}, Templates: fakeTemplates{},
		DB: pingFunc(func(context.Context) error { return nil }), Log: zap.NewNop()})
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/tasks", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Less(t, w.Code, 500, "body %q → %d %s", body, w.Code, w.Body.String())
		if w.Code != http.StatusOK {
			var e apiError
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
			require.NotEmpty(t, e.Error.Code)
			return
		}
		var r domain.TaskRequest
		require.NoError(t, json.Unmarshal(body, &r))
		r.ApplyDefaults()
		require.NoError(t, r.Validate())
	})
}
