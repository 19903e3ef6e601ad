package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

const failNS = "failcases"

// registerFailTemplate registers a template whose steps are independent
// roots; step "slow_step" has timeout_seconds 1.
func registerFailTemplate(t *testing.T, db *sqlx.DB, steps ...string) testdb.TaskSpec {
	t.Helper()
	spec := testdb.TaskSpec{Namespace: failNS, Name: "failures", Version: "1.0.0", Context: map[string]any{}}
	for _, s := range steps {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: s})
	}
	tmpl := testdb.TemplateFromSpec(spec)
	for i := range tmpl.Steps {
		if tmpl.Steps[i].Name == "slow_step" {
			tmpl.Steps[i].TimeoutSeconds = testdb.Ptr(uint32(1))
		}
	}
	conf, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	_, err = postgres.NewTemplateStore(db).RegisterTemplate(context.Background(), tmpl, conf)
	require.NoError(t, err)
	return spec
}

func failHandlers(t *testing.T) *handler.Registry {
	t.Helper()
	r := handler.NewRegistry()
	must := func(c string, h handler.HandlerFunc) { require.NoError(t, r.Register(c, h)) }
	must("retry_step", func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Success{}, handler.Retryable("upstream_unavailable", "try later").RetryAfter(7)
	})
	must("perm_step", func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Success{}, handler.Permanent("validation", "bad input").WithCode("E_BAD")
	})
	must("panic_step", func(context.Context, *handler.StepContext) (handler.Success, error) { panic("kaboom") })
	must("slow_step", func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		<-ctx.Done()
		return handler.Success{}, ctx.Err()
	})
	must("ok_step", func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Succeed("fine"), nil
	})
	return r
}

func waitState(t *testing.T, db *sqlx.DB, step uuid.UUID, want domain.StepState) {
	t.Helper()
	require.Eventually(t, func() bool { return stepState(t, db, step) == want }, 20*time.Second, 10*time.Millisecond,
		"step %s never reached %s (now %s)", step, want, stepState(t, db, step))
}

func archivedIDs(t *testing.T, db *sqlx.DB, queue string) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, db.Select(&ids, fmt.Sprintf(`SELECT msg_id FROM pgmq.a_%s ORDER BY msg_id`, queue)))
	return ids
}

func TestWorkerPersistsEachFailureKind(t *testing.T) {
	db, url := workerDB(t)
	spec := registerFailTemplate(t, db, "retry_step", "perm_step", "panic_step", "slow_step", "unknown_step")
	startWorker(t, url, workerOpts{namespaces: []string{failNS}, handlers: failHandlers(t)})
	task := testdb.CreateTask(t, db, spec)
	for _, s := range spec.Steps {
		enqueue(t, db, failNS+"_queue", task.TaskUUID, task.Steps[s.Name])
	}
	tests := []struct {
		step      string
		retryable bool
		errorType string
	}{
		{"retry_step", true, "upstream_unavailable"},
		{"perm_step", false, "validation"},
		{"panic_step", true, domain.ErrorTypeHandlerPanic},
		{"slow_step", true, domain.ErrorTypeTimeout},
		{"unknown_step", true, domain.ErrorTypeHandlerNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			id := task.Steps[tt.step]
			waitState(t, db, id, domain.StepError)
			res := stepResults(t, db, id)
			require.False(t, res.Success)
			require.Equal(t, domain.ResultStatusFailed, res.Status)
			require.Equal(t, tt.retryable, res.Error.Retryable)
			require.Equal(t, tt.retryable, res.Metadata.Retryable)
			require.Equal(t, tt.errorType, *res.Error.ErrorType)
			require.Equal(t, tt.errorType, *res.Metadata.ErrorType)
			var attempts int
			require.NoError(t, db.Get(&attempts, `SELECT attempts FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, id))
			require.Equal(t, 1, attempts, "the failed attempt counts")
			switch tt.step {
			case "retry_step":
				require.Equal(t, "7", res.OrchestrationMetadata.Headers[domain.RetryAfterHeader])
			case "perm_step":
				require.Equal(t, "E_BAD", *res.Metadata.ErrorCode)
			case "panic_step":
				require.Contains(t, res.Error.Message, "kaboom")
				require.NotEmpty(t, res.Error.Backtrace)
			}
		})
	}
	require.Len(t, messagesFor(t, db, domain.QueueStepResults, task.TaskUUID), len(spec.Steps))
	require.Empty(t, messagesFor(t, db, failNS+"_queue", task.TaskUUID))
}

func TestWorkerArchivesPoisonAndDeletesStaleMessages(t *testing.T) {
	db, url := workerDB(t)
	spec := registerFailTemplate(t, db, "ok_step")
	queue := failNS + "_queue"
	startWorker(t, url, workerOpts{namespaces: []string{failNS}, handlers: failHandlers(t)})

	var poison []int64
	for _, body := range []string{`"just a string"`, `{"task_uuid":"not-a-uuid","step_uuid":"x"}`, `{"task_uuid":"` + uuid.NewString() + `"}`} {
		var id int64
		require.NoError(t, db.Get(&id, `SELECT pgmq.send($1::text, $2::jsonb, 0)`, queue, body))
		poison = append(poison, id)
	}
	unknown := testdb.SendStepMessage(t, db, queue, uuid.New(), uuid.New())

	done := testdb.CreateTask(t, db, spec)
	testdb.SetStepState(t, db, done.Steps["ok_step"], domain.StepComplete)
	stale := testdb.SendStepMessage(t, db, queue, done.TaskUUID, done.Steps["ok_step"])

	wrongTask := testdb.CreateTask(t, db, spec)
	mismatch := testdb.SendStepMessage(t, db, queue, uuid.New(), wrongTask.Steps["ok_step"])

	require.Eventually(t, func() bool { return len(testdb.QueueMessages(t, db, queue)) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, append(poison, unknown, mismatch), archivedIDs(t, db, queue),
		"poison, unknown step and task mismatch archived; stale message deleted, not archived")
	require.NotContains(t, archivedIDs(t, db, queue), stale)
	require.Equal(t, domain.StepComplete, stepState(t, db, done.Steps["ok_step"]))
	require.Equal(t, domain.StepPending, stepState(t, db, wrongTask.Steps["ok_step"]), "a mismatched message claims nothing")
	require.Empty(t, messagesFor(t, db, domain.QueueStepResults, done.TaskUUID), "no completion for a stale message")
}

func TestWorkerFailsAbandonedStepAsWorkerLost(t *testing.T) {
	db, url := workerDB(t)
	spec := registerFailTemplate(t, db, "ok_step")
	startWorker(t, url, workerOpts{namespaces: []string{failNS}, handlers: failHandlers(t),
		tune: func(c *engine.Config) { c.StepClaimTimeout = 2 * time.Second }})
	task := testdb.CreateTask(t, db, spec)
	id := task.Steps["ok_step"]
	testdb.SetStepState(t, db, id, domain.StepInProgress) // claimed by a worker that then died
	start := time.Now()
	testdb.SendStepMessage(t, db, failNS+"_queue", task.TaskUUID, id)

	waitState(t, db, id, domain.StepError)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "not failed before the claim timeout")
	res := stepResults(t, db, id)
	require.True(t, res.Error.Retryable)
	require.Equal(t, domain.ErrorTypeWorkerLost, *res.Error.ErrorType)
	require.Len(t, messagesFor(t, db, domain.QueueStepResults, task.TaskUUID), 1)
	require.Empty(t, messagesFor(t, db, failNS+"_queue", task.TaskUUID))
}
