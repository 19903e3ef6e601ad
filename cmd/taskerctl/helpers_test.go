package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// envRunAsMain makes the test binary behave as taskerctl itself, so tests
// can run it as a process (shell completion calls the binary back).
const envRunAsMain = "TASKERCTL_TEST_RUN_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsMain) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// orchestration is a scripted stand-in for the orchestration API: each
// "METHOD /path" answers its replies in order, repeating the last one.
type orchestration struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string][]string // status + " " + body
	hits   map[string]int
	total  int
	bodies []string
}

func newOrchestration(t *testing.T) *orchestration {
	t.Helper()
	o := &orchestration{routes: map[string][]string{}, hits: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

// on scripts a route; each reply is "STATUS BODY", e.g. `200 {"status":"ok"}`.
func (o *orchestration) on(route string, replies ...string) *orchestration {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.routes[route] = replies
	return o
}

func (o *orchestration) serve(w http.ResponseWriter, r *http.Request) {
	buf := new(bytes.Buffer)
	_, _ = buf.ReadFrom(r.Body)
	route := r.Method + " " + r.URL.Path
	o.mu.Lock()
	o.total++
	o.bodies = append(o.bodies, buf.String())
	o.hits[route]++
	replies, ok := o.routes[route]
	n := o.hits[route]
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"NOT_FOUND","message":"no route %s"}}`, route)
		return
	}
	status, body, _ := strings.Cut(replies[min(n, len(replies))-1], " ")
	code := 0
	fmt.Sscan(status, &code)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func (o *orchestration) requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

func (o *orchestration) count(route string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[route]
}

// result is one taskerctl invocation.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs taskerctl in-process against env (TASKER_* lookups) with a
// fast poll interval.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] },
		pollInterval: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := c.run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// at runs taskerctl against the fake orchestration.
func (o *orchestration) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t, map[string]string{envBaseURL: o.URL}, args...)
}

const (
	taskUUID  = "0190f0b2-6c1a-7000-8000-000000000001"
	taskRoute = "GET /v1/tasks/" + taskUUID
	stepRoute = "GET /v1/tasks/" + taskUUID + "/workflow_steps"
	created   = `200 {"task_uuid":"` + taskUUID + `","status":"created","created_at":"2026-01-02T03:04:05Z",` +
		`"estimated_completion":null,"step_count":4,"step_mapping":{"diamond_start":"0190f0b2-6c1a-7000-8000-0000000000a1",` +
		`"diamond_end":"0190f0b2-6c1a-7000-8000-0000000000a4"},"handler_config_name":"diamond_workflow"}`
)

// taskReply is a 200 TaskResponse for the diamond task.
func taskReply(status string, completed, inProgress, failed int) string {
	completedAt := "null"
	if status == "complete" {
		completedAt = `"2026-01-02T03:04:07Z"`
	}
	return fmt.Sprintf(`200 {"task_uuid":"%s","name":"diamond_workflow","namespace":"examples","version":"1.0.0",`+
		`"status":"%s","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06Z","completed_at":%s,`+
		`"context":{"even_number":2},"initiator":"UNKNOWN","source_system":"UNKNOWN","reason":"UNKNOWN","priority":0,`+
		`"tags":null,"total_steps":4,"pending_steps":%d,"in_progress_steps":%d,"completed_steps":%d,"failed_steps":%d,`+
		`"ready_steps":0,"execution_status":"processing","recommended_action":"wait_for_completion",`+
		`"completion_percentage":%g,"health_status":"healthy","steps":[]}`,
		taskUUID, status, completedAt, 4-completed-inProgress-failed, inProgress, completed, failed, float64(completed)*25)
}

// stepJSON is one StepResponse; completed "" means not finished.
func stepJSON(n int, name, state string, parents int, completed, results string) string {
	completedAt := "null"
	if completed != "" {
		completedAt = `"2026-01-02T03:04:` + completed + `Z"`
	}
	if results == "" {
		results = "null"
	}
	return fmt.Sprintf(`{"step_uuid":"0190f0b2-6c1a-7000-8000-0000000000a%d","task_uuid":"%s","name":"%s",`+
		`"created_at":"2026-01-02T03:04:05.000000Z","updated_at":"2026-01-02T03:04:05.000000Z","completed_at":%s,`+
		`"results":%s,"current_state":"%s","dependencies_satisfied":true,"retry_eligible":true,"ready_for_execution":false,`+
		`"total_parents":%d,"completed_parents":%d,"attempts":1,"retry_limit":3,"last_failure_at":null,`+
		`"next_retry_at":null,"last_attempted_at":null}`, n, taskUUID, name, completedAt, results, state, parents, parents)
}

func okResult(v string) string {
	return `{"step_uuid":"x","success":true,"result":` + v + `,"status":"completed","metadata":{}}`
}

// diamondSteps is GET …/workflow_steps of a completed diamond with even_number 2.
// The join finishes last; created_at order is not execution order.
var diamondSteps = `200 [` + strings.Join([]string{
	stepJSON(4, "diamond_end", "complete", 2, "06.900000", okResult("256")),
	stepJSON(1, "diamond_start", "complete", 0, "05.100000", okResult("4")),
	stepJSON(2, "diamond_branch_b", "complete", 1, "05.500000", okResult("16")),
	stepJSON(3, "diamond_branch_c", "complete", 1, "05.600000", okResult("16")),
}, ",") + `]`
