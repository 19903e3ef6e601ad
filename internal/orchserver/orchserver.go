// Package orchserver serves the real orchestration HTTP API in process, for
// tests of its clients: the gin server of adapters/web/orchestrationapi over
// the orchestration service's task creation, on a migrated test database of
// its own (internal/testdb) with the example templates of
// configs/tasks/examples registered. Task creation runs the real path
// (validation, input schema, template lookup, the PostgreSQL task store); the
// service loops (enqueue, result consumers) are not started, so a created
// task stays pending, which is all a client's test needs and leaves no
// goroutine behind but the HTTP server's, closed with the test.
package orchserver

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// Namespace is the namespace of the example templates.
const Namespace = "examples"

// Server is one orchestration API on a database of its own.
type Server struct {
	// URL is the API's base URL (http://127.0.0.1:port).
	URL string
	// DB is the server's database, for a test to check what a request wrote.
	DB *sqlx.DB
	// Templates are the registered example templates.
	Templates []domain.TaskTemplate

	srv  *httptest.Server
	once sync.Once
}

// Start serves the API until the test ends (or Stop).
func Start(t testing.TB) *Server {
	t.Helper()
	db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	templates := postgres.NewTemplateStore(db)
	registered := testdb.RegisterExampleTemplates(t, examplesDir(t), func(tmpl domain.TaskTemplate, cfg json.RawMessage) error {
		_, err := templates.RegisterTemplate(context.Background(), tmpl, cfg)
		return err
	})
	orch := postgres.NewOrchestrationStore(db)
	query := postgres.NewTaskQuery(db)
	svc := service.New(service.Config{Environment: "test"}, service.Deps{
		Templates: templates, Creator: postgres.NewTaskStore(db), Enqueuer: orch, Batches: orch, Canceller: orch,
		Queue: pgmq.New(db), DLQ: postgres.NewDLQStore(db),
	})
	api := web.New(web.Config{Environment: "test"}, web.Deps{Tasks: svc, DLQ: svc, Query: query, Templates: templates, DB: query})
	s := &Server{DB: db, Templates: registered, srv: httptest.NewServer(api.Handler())}
	s.URL = s.srv.URL
	t.Cleanup(s.Stop)
	return s
}

// Stop closes the server: later requests to URL are refused. It may be
// called more than once.
func (s *Server) Stop() { s.once.Do(s.srv.Close) }

// Template returns the registered example template called name.
func (s *Server) Template(t testing.TB, name string) domain.TaskTemplate {
	t.Helper()
	for _, tmpl := range s.Templates {
		if tmpl.Name == name {
			return tmpl
		}
	}
	require.FailNow(t, "no example template "+name)
	return domain.TaskTemplate{}
}

// Task is what the database holds about one task.
type Task struct {
	Namespace string          `db:"namespace"`
	Name      string          `db:"name"`
	Version   string          `db:"version"`
	Context   json.RawMessage `db:"context"`
	Steps     int             `db:"steps"`
}

// Task reads the task; false when no such task exists.
func (s *Server) Task(t testing.TB, id uuid.UUID) (Task, bool) {
	t.Helper()
	var out []Task
	require.NoError(t, s.DB.Select(&out, `SELECT ns.name AS namespace, nt.name, nt.version, t.context,
			(SELECT COUNT(*) FROM tasker_workflow_steps ws WHERE ws.task_uuid = t.task_uuid) AS steps
		FROM tasker_tasks t
		JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
		JOIN tasker_task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
		WHERE t.task_uuid = $1`, id))
	if len(out) == 0 {
		return Task{}, false
	}
	return out[0], true
}

// TaskCount counts the tasks in the database.
func (s *Server) TaskCount(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, s.DB.Get(&n, `SELECT COUNT(*) FROM tasker_tasks`))
	return n
}

// examplesDir is configs/tasks/examples of this repository, found from this
// file so any package's test can start a server.
func examplesDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..", "configs", "tasks", "examples")
}
