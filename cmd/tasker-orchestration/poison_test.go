package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// startServe runs serve on a fresh database with the example templates and
// returns the database and the API's base URL; serve stops with the test.
func startServe(t *testing.T, tune func(*config.Config)) (*sqlx.DB, string) {
	t.Helper()
	return startServeWith(t, tune, nil, zap.NewNop())
}

// startServeWith is startServe with a hook on the database before serve
// starts and a logger.
func startServeWith(t *testing.T, tune func(*config.Config), before func(*sqlx.DB), log *zap.Logger) (*sqlx.DB, string) {
	t.Helper()
	cfg := config.Defaults(config.EnvTest)
	cfg.Database.URL = testdb.URL(t)
	cfg.Orchestration.BindAddress = freePort(t)
	cfg.Pgmq.PollIntervalMs = 50
	if tune != nil {
		tune(&cfg)
	}
	db, err := postgres.Open(context.Background(), cfg.Database.URL, postgres.PoolConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	store := postgres.NewTemplateStore(db)
	testdb.RegisterExampleTemplates(t, "../../configs/tasks/examples", func(tmpl domain.TaskTemplate, c json.RawMessage) error {
		_, err := store.RegisterTemplate(context.Background(), tmpl, c)
		return err
	})
	if before != nil {
		before(db)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + cfg.Orchestration.BindAddress
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 20*time.Millisecond)
	return db, base
}

func sendRequest(t *testing.T, db *sqlx.DB, body string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Get(&id, `SELECT pgmq.send($1::text, $2::jsonb, 0::integer)`, domain.QueueTaskRequests, body))
	return id
}

type archivedMsg struct {
	ReadCt int `db:"read_ct"`
}

func waitArchived(t *testing.T, db *sqlx.DB, id int64, within time.Duration) archivedMsg {
	t.Helper()
	var a archivedMsg
	require.Eventually(t, func() bool {
		return db.Get(&a, `SELECT read_ct FROM pgmq.a_orchestration_task_requests WHERE msg_id = $1`, id) == nil
	}, within, 20*time.Millisecond, "message %d archived", id)
	return a
}

// A task request whose priority (3000000000) no integer column holds fails
// with SQLSTATE 22003 on every attempt: it is archived at its first read and
// dead-lettered with the cause.
func TestPoisonTaskRequestArchivedAtOnceAndDeadLettered(t *testing.T) {
	db, _ := startServe(t, nil)
	start := time.Now()
	id := sendRequest(t, db, `{"request_id":"poison-1","task_request":{"name":"linear_workflow","namespace":"examples",
		"version":"1.0.0","context":{"even_number":2},"priority":3000000000},"metadata":{}}`)
	a := waitArchived(t, db, id, 10*time.Second)
	require.Equal(t, 1, a.ReadCt, "archived at its first read")
	var e struct {
		Reason string `db:"reason"`
		Queue  string `db:"queue_name"`
		Detail string `db:"detail"`
	}
	require.Eventually(t, func() bool {
		return db.Get(&e, `SELECT reason, queue_name, detail FROM tasker_go_dlq_entries`) == nil
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "poison_message", e.Reason)
	require.Equal(t, domain.QueueTaskRequests, e.Queue)
	require.Contains(t, e.Detail, "poison-1")
	var tasks int
	require.NoError(t, db.Get(&tasks, `SELECT COUNT(*) FROM tasker_tasks`))
	require.Zero(t, tasks)
	t.Logf("priority 3000000000 request: archived with read_ct=%d after %s; DLQ entry reason=%s detail=%q",
		a.ReadCt, time.Since(start).Round(time.Millisecond), e.Reason, e.Detail)
}

// A request failing transiently (SQLSTATE 40001 from a trigger) is retried
// after each visibility timeout until pgmq.max_receive_count reads, then
// archived and dead-lettered; a good request beside it is created.
func TestTransientFailureHitsReceiveLimit(t *testing.T) {
	db, _ := startServe(t, func(c *config.Config) {
		c.Pgmq.VisibilityTimeoutSeconds = 1
		c.Pgmq.MaxReceiveCount = 3
	})
	_, err := db.Exec(`CREATE FUNCTION fail_transiently() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.context->>'fail' = 'transient' THEN
    RAISE EXCEPTION 'simulated serialization failure' USING ERRCODE = '40001';
  END IF;
  IF NEW.context->>'fail' = 'constraint' THEN
    RAISE EXCEPTION 'simulated check violation' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fail_transiently BEFORE INSERT ON tasker_tasks FOR EACH ROW EXECUTE FUNCTION fail_transiently();`)
	require.NoError(t, err)
	start := time.Now()
	id := sendRequest(t, db, `{"request_id":"flaky-1","task_request":{"name":"linear_workflow","namespace":"examples",
		"version":"1.0.0","context":{"even_number":2,"fail":"transient"}},"metadata":{}}`)
	good := sendRequest(t, db, `{"request_id":"good-1","task_request":{"name":"linear_workflow","namespace":"examples",
		"version":"1.0.0","context":{"even_number":2}},"metadata":{}}`)
	constraint := sendRequest(t, db, `{"request_id":"constraint-1","task_request":{"name":"linear_workflow","namespace":"examples",
		"version":"1.0.0","context":{"even_number":2,"fail":"constraint"}},"metadata":{}}`)
	c := waitArchived(t, db, constraint, 10*time.Second)
	require.Equal(t, 1, c.ReadCt, "a valid request the database refuses (23514) is poison at its first read")
	a := waitArchived(t, db, id, 20*time.Second)
	require.Equal(t, 4, a.ReadCt, "read max_receive_count (3) times, archived on the 4th read")
	// The DLQ entry is written just after the archive, in its own statement:
	// wait for it rather than racing it.
	dlqCount := func(like string) int {
		var c int
		require.NoError(t, db.Get(&c, `SELECT COUNT(*) FROM tasker_go_dlq_entries WHERE reason = 'poison_message' AND detail LIKE $1`, like))
		return c
	}
	require.Eventually(t, func() bool { return dlqCount("%max_receive_count%") == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return dlqCount("%permanent database error%23514%") == 1 }, 5*time.Second, 20*time.Millisecond)
	var n int
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pgmq.a_orchestration_task_requests WHERE msg_id = $1`, good))
	require.Zero(t, n, "the good request was not archived")
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM tasker_tasks`))
	require.Equal(t, 1, n)
	t.Logf("transiently failing request: 3 failed attempts, archived on read %d after %s and dead-lettered",
		a.ReadCt, time.Since(start).Round(time.Millisecond))
}

// On a database migrated by tasker-core only (no tasker_go_* tables) the
// orchestration runs: one WARN at start, keyed creation still creates tasks
// (the key is not enforced), /v1/dlq answers 503.
func TestServeWithoutGoTables(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	_, base := startServeWith(t, nil, func(db *sqlx.DB) {
		_, err := db.Exec(`DROP TABLE tasker_go_idempotency_keys; DROP TABLE tasker_go_dlq_entries`)
		require.NoError(t, err)
	}, zap.New(core))
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/tasks", strings.NewReader(
			`{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":2}}`))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", "k")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, err := http.Get(base + "/v1/dlq")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	warns := logs.FilterMessageSnippet("migration 00008").All()
	require.Len(t, warns, 1, "one WARN")
}
