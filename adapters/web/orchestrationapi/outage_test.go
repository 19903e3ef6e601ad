package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// dataRoutes are one request per data route of the API (issue 13 defects
// 2 and 3 were seen on GET, list, POST and DELETE).
func dataRoutes(task, step string) [][3]string {
	return [][3]string{
		{http.MethodGet, "/v1/tasks/" + task, ""},
		{http.MethodGet, "/v1/tasks", ""},
		{http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`)},
		{http.MethodDelete, "/v1/tasks/" + task, ""},
		{http.MethodGet, "/v1/tasks/" + task + "/workflow_steps", ""},
		{http.MethodGet, "/v1/tasks/" + task + "/workflow_steps/" + step, ""},
		{http.MethodGet, "/v1/templates", ""},
		{http.MethodGet, "/v1/templates/examples/linear_workflow/1.0.0", ""},
	}
}

// TestDatabaseRefusingConnectionsIs503 is issue 13 defect 3: before, every
// data route answered 500 INTERNAL_ERROR while the database refused
// connections; the contract's table says 503 SERVICE_UNAVAILABLE.
func TestDatabaseRefusingConnectionsIs503(t *testing.T) {
	skipRouteCheckIfSkipped(t)
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	f := setupOver(t, web.Config{}, db, examples{})
	for _, r := range dataRoutes(uuid.NewString(), uuid.NewString()) {
		resp, body := f.do(t, r[0], r[1], r[2])
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s: %s", r[0], r[1], body)
		require.Equal(t, web.RetryAfterSeconds, resp.Header.Get("Retry-After"))
		var e apiError
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, web.CodeServiceUnavailable, e.Error.Code)
		t.Logf("%s %s → %d %s", r[0], r[1], resp.StatusCode, body)
	}
}

// TestDatabaseNotAcceptingConnectionsIs503 is issue 13 defect 3 with the
// database itself refusing connections (ALTER DATABASE ... ALLOW_CONNECTIONS
// false, its sessions terminated): PostgreSQL answers a new connection with
// FATAL 55000, which every data route answered 500 INTERNAL_ERROR with
// (seen on the real binary); now 503 with Retry-After.
func TestDatabaseNotAcceptingConnectionsIs503(t *testing.T) {
	f := setup(t, web.Config{})
	ctx := context.Background()
	var name string
	require.NoError(t, f.db.GetContext(ctx, &name, `SELECT current_database()`))
	admin, err := sqlx.Open("postgres", testdb.EmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	_, err = admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, name))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, name)) })
	_, err = admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name)
	require.NoError(t, err)
	for _, r := range dataRoutes(uuid.NewString(), uuid.NewString()) {
		resp, body := f.do(t, r[0], r[1], r[2])
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s: %s", r[0], r[1], body)
		require.Equal(t, web.RetryAfterSeconds, resp.Header.Get("Retry-After"))
		var e apiError
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, web.CodeServiceUnavailable, e.Error.Code)
		t.Logf("%s %s → %d %s", r[0], r[1], resp.StatusCode, body)
	}
}

// TestLockedTableTimesOutWith408 is issue 13 defect 2: with tasker_tasks
// locked past the request timeout, lib/pq cancels the statement and returns
// SQLSTATE 57014, which used to answer 500; now it is 408 TIMEOUT, and
// nothing is written.
func TestLockedTableTimesOutWith408(t *testing.T) {
	f := setup(t, web.Config{RequestTimeout: 300 * time.Millisecond})
	resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var created domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(body, &created))
	var step string
	for _, id := range created.StepMapping {
		step = id.String()
	}
	before := rowCounts(t, f.db)

	tx, err := f.db.BeginTxx(context.Background(), nil)
	require.NoError(t, err)
	_, err = tx.Exec("LOCK TABLE tasker_tasks, tasker_workflow_steps IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	for _, r := range dataRoutes(created.TaskUUID.String(), step)[:6] {
		start := time.Now()
		resp, body := f.do(t, r[0], r[1], r[2])
		require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "%s %s: %s", r[0], r[1], body)
		var e apiError
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, web.CodeTimeout, e.Error.Code)
		require.Less(t, time.Since(start), 3*time.Second)
		t.Logf("%s %s → %d %s in %s", r[0], r[1], resp.StatusCode, body, time.Since(start).Round(time.Millisecond))
	}
	require.NoError(t, tx.Rollback())
	require.Equal(t, before, rowCounts(t, f.db), "timed-out requests wrote nothing")
}
