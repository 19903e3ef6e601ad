package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
)

// TestIdempotencyKeyConcurrentCreatesOneTask: 100 concurrent POST /v1/tasks
// with one key create exactly one task; every answer is 200 with its
// task_uuid, and all but one say they were replayed.
func TestIdempotencyKeyConcurrentCreatesOneTask(t *testing.T) {
	f := setup(t, web.Config{})
	body := createBody("linear_workflow", `{"even_number": 6}`)
	const n = 100
	var wg sync.WaitGroup
	type answer struct {
		status   int
		uuid     string
		replayed string
	}
	answers := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := f.do(t, http.MethodPost, "/v1/tasks", body, web.HeaderIdempotencyKey, "order-4711")
			var out struct {
				TaskUUID string `json:"task_uuid"`
			}
			_ = json.Unmarshal(b, &out)
			answers[i] = answer{resp.StatusCode, out.TaskUUID, resp.Header.Get(web.HeaderIdempotentReplayed)}
		}()
	}
	wg.Wait()
	replays := 0
	for _, a := range answers {
		require.Equal(t, http.StatusOK, a.status)
		require.Equal(t, answers[0].uuid, a.uuid, "every answer names the one task")
		if a.replayed == "true" {
			replays++
		}
	}
	require.Equal(t, n-1, replays)
	var tasks int
	require.NoError(t, f.db.Get(&tasks, `SELECT COUNT(*) FROM tasker_tasks`))
	require.Equal(t, 1, tasks)
	t.Logf("100 concurrent POST /v1/tasks with one Idempotency-Key: %d task(s), %d replays", tasks, replays)
}

// TestIdempotencyKeyOtherBodyConflicts: a key reused with another body is
// 409 CONFLICT and writes nothing; a key equal up to context key order and
// whitespace replays.
func TestIdempotencyKeyOtherBodyConflicts(t *testing.T) {
	f := setup(t, web.Config{})
	resp, b := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6, "a": 1}`), web.HeaderIdempotencyKey, "k1")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.Empty(t, resp.Header.Get(web.HeaderIdempotentReplayed))
	var first struct {
		TaskUUID string `json:"task_uuid"`
	}
	require.NoError(t, json.Unmarshal(b, &first))

	resp, b = f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"a":1,"even_number":6}`), web.HeaderIdempotencyKey, "k1")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.Equal(t, "true", resp.Header.Get(web.HeaderIdempotentReplayed))
	require.Contains(t, string(b), first.TaskUUID)

	before := rowCounts(t, f.db)
	resp, b = f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 8}`), web.HeaderIdempotencyKey, "k1")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	var e apiError
	require.NoError(t, json.Unmarshal(b, &e))
	require.Equal(t, web.CodeConflict, e.Error.Code)
	require.Contains(t, e.Error.Message, "k1")
	require.Contains(t, e.Error.Message, "different request body")
	require.Equal(t, before, rowCounts(t, f.db), "a conflict writes nothing")

	// Without a key, identical bodies are distinct tasks (§10.1 identity_hash is not unique).
	for range 2 {
		resp, _ = f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6}`))
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Equal(t, before["tasker_tasks"]+2, rowCounts(t, f.db)["tasker_tasks"])
}

// TestIdempotencyKeyValidation: an empty, over-long or non-printable key is
// 400 and writes nothing; a bad request never consumes the key.
func TestIdempotencyKeyValidation(t *testing.T) {
	f := setup(t, web.Config{})
	before := rowCounts(t, f.db)
	long := make([]byte, web.MaxIdempotencyKeyLength+1)
	for i := range long {
		long[i] = 'k'
	}
	for name, key := range map[string]string{"too long": string(long), "space": "a b", "control": "a\tb"} {
		t.Run(name, func(t *testing.T) {
			resp, b := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6}`), web.HeaderIdempotencyKey, key)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
			require.Contains(t, string(b), "Idempotency-Key")
		})
	}
	resp, _ := f.do(t, http.MethodPost, "/v1/tasks", createBody("no_such_workflow", `{}`), web.HeaderIdempotencyKey, "k2")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, before, rowCounts(t, f.db))
	resp, _ = f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6}`), web.HeaderIdempotencyKey, "k2")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get(web.HeaderIdempotentReplayed), "the 404 did not record k2")
}

// TestIdempotencyWithoutKeyTable: on a database without tasker_go tables (as
// tasker-core's own migrations make it) a keyed request still creates its
// task; the key is simply not enforced.
func TestIdempotencyWithoutKeyTable(t *testing.T) {
	f := setup(t, web.Config{})
	_, err := f.db.Exec(`DROP TABLE tasker_go_idempotency_keys`)
	require.NoError(t, err)
	for range 2 {
		resp, b := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6}`), web.HeaderIdempotencyKey, "k3")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Empty(t, resp.Header.Get(web.HeaderIdempotentReplayed))
	}
	require.Equal(t, 2, rowCounts(t, f.db)["tasker_tasks"])
}

// TestClientRetryAfter503FollowingInsertCreatesOneTask: the first attempt's
// task is committed but the answer is replaced by a 503 (as when a proxy or
// a dying instance loses it); the Go client retries with the same
// Idempotency-Key and gets that task back, so one logical create is one task.
func TestClientRetryAfter503FollowingInsertCreatesOneTask(t *testing.T) {
	f := setup(t, web.Config{})
	var attempts atomic.Int32
	var keys sync.Map
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys.Store(r.Header.Get(web.HeaderIdempotencyKey), true)
		proxied, err := http.NewRequestWithContext(r.Context(), r.Method, f.srv.URL+r.URL.Path, r.Body)
		require.NoError(t, err)
		proxied.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(proxied)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if attempts.Add(1) == 1 {
			require.Equal(t, http.StatusOK, resp.StatusCode, "the first attempt created the task")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"lost"}}`))
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(lossy.Close)
	cfg := httpclient.DefaultConfig()
	cfg.BaseURL = lossy.URL
	cfg.Backoff.Initial, cfg.Backoff.Jitter = 10*time.Millisecond, 0
	c, err := httpclient.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	var req domain.TaskRequest
	require.NoError(t, json.Unmarshal([]byte(createBody("linear_workflow", `{"even_number": 6}`)), &req))
	resp, err := c.CreateTask(context.Background(), req)
	require.NoError(t, err)
	require.True(t, resp.Replayed, "the retry was answered from the key")
	require.EqualValues(t, 2, attempts.Load())
	n := 0
	keys.Range(func(any, any) bool { n++; return true })
	require.Equal(t, 1, n, "both attempts sent one key")
	var tasks []string
	require.NoError(t, f.db.Select(&tasks, `SELECT task_uuid::text FROM tasker_tasks`))
	require.Equal(t, []string{resp.TaskUUID.String()}, tasks)
	t.Logf("client retry after a 503 that followed a committed insert: %d attempts, %d task", attempts.Load(), len(tasks))
}
