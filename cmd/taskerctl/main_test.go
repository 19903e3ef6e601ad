package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUsageAndInputErrorsExit2WithoutSending(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	arrayFile := filepath.Join(dir, "array.json")
	require.NoError(t, os.WriteFile(arrayFile, []byte(`[1,2]`), 0o600))
	create := []string{"task", "create", "--namespace", "examples", "--name", "diamond_workflow", "--version", "1.0.0"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no command", args: nil, wantErr: "missing command"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`},
		{name: "unknown global flag", args: []string{"--colour", "task"}, wantErr: "flag provided but not defined: -colour"},
		{name: "bad output", args: []string{"--output", "yaml", "health"}, wantErr: `--output must be human or json, got "yaml"`},
		{name: "bad output after the command", args: []string{"health", "--output", "xml"}, wantErr: "--output must be human or json"},
		{name: "task without subcommand", args: []string{"task"}, wantErr: "task: missing subcommand"},
		{name: "unknown task subcommand", args: []string{"task", "delete"}, wantErr: `unknown subcommand "delete"`},
		{name: "create without name", args: []string{"task", "create", "--namespace", "examples", "--version", "1"},
			wantErr: "task create: --name is required"},
		{name: "create with bad context JSON", args: append(create, "--context", `{"even_number": 2,}`),
			wantErr: "--context is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 19 of 19)"},
		{name: "create with non-object context", args: append(create, "--context", `42`),
			wantErr: "--context must be a JSON object"},
		{name: "create with array context file", args: append(create, "--context", "@"+arrayFile),
			wantErr: "--context file " + arrayFile + " must be a JSON object such as {\"even_number\": 2}, got an array"},
		{name: "create with missing context file", args: append(create, "--context", "@"+filepath.Join(dir, "nope.json")),
			wantErr: "read --context file"},
		{name: "create with invalid namespace", args: []string{"task", "create", "--namespace", "Bad-NS", "--name", "n", "--version", "1"},
			wantErr: "task create: namespace: Task namespace"},
		{name: "create with positional argument", args: append(create, "extra"), wantErr: `unexpected argument "extra"`},
		{name: "create with zero timeout", args: append(create, "--timeout", "0s"), wantErr: "--timeout and --poll-interval must be positive"},
		{name: "get without uuid", args: []string{"task", "get"}, wantErr: "task get: missing UUID"},
		{name: "get with bad uuid", args: []string{"task", "get", "not-a-uuid"}, wantErr: `"not-a-uuid" is not a task UUID`},
		{name: "get with two uuids", args: []string{"task", "get", taskUUID, taskUUID}, wantErr: "unexpected argument"},
		{name: "cancel with bad uuid", args: []string{"task", "cancel", "x"}, wantErr: "is not a task UUID"},
		{name: "steps without uuid", args: []string{"task", "steps"}, wantErr: "task steps: missing UUID"},
		{name: "list with bad status", args: []string{"task", "list", "--status", "done"}, wantErr: `--status "done" is not a task state`},
		{name: "list with per-page 500", args: []string{"task", "list", "--per-page", "500"}, wantErr: "--per-page in 1..100"},
		{name: "list with non-numeric page", args: []string{"task", "list", "--page", "two"}, wantErr: `invalid value "two" for flag -page`},
		{name: "template without subcommand", args: []string{"template"}, wantErr: "the only subcommand is validate"},
		{name: "template validate without files", args: []string{"template", "validate"}, wantErr: "missing FILE..."},
		{name: "bad url", args: []string{"--url", "localhost:8080", "health"}, wantErr: "orchestration_api.base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrchestration(t)
			r := o.run(t, tt.args...)
			require.Equal(t, exitUsage, r.code, r.stderr)
			require.Contains(t, r.stderr, tt.wantErr)
			require.Empty(t, r.stdout)
			require.Zero(t, o.requests(), "nothing is sent for a usage or input error")
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stdout, "task create --namespace NS --name NAME --version V")
}

func TestURLFromEnvironmentAndFlag(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).on("GET /health", `200 {"status":"ok","timestamp":"2026-01-02T03:04:05Z"}`)

	r := runCLI(t, map[string]string{envBaseURL: o.URL}, "health")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "orchestration at "+o.URL+": ok")

	r = runCLI(t, map[string]string{envBaseURL: "http://127.0.0.1:1"}, "--url", o.URL, "health")
	require.Equal(t, exitOK, r.code, "--url wins over the environment: %s", r.stderr)
	require.Equal(t, 2, o.count("GET /health"))
}

func TestHealthFailureIsExit1(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).on("GET /health", `503 {"error":{"code":"SERVICE_UNAVAILABLE","message":"database unavailable"}}`)
	r := o.run(t, "health")
	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stderr, "SERVICE_UNAVAILABLE: database unavailable")
	require.Equal(t, 4, o.count("GET /health"), "1 attempt + 3 retries")
}

func TestCreateWithoutWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctxFile := filepath.Join(dir, "ctx.json")
	require.NoError(t, os.WriteFile(ctxFile, []byte(" {\"even_number\": 2}\n"), 0o600))
	o := newOrchestration(t).on("POST /v1/tasks", created)

	r := o.run(t, "task", "create", "--namespace", "examples", "--name", "diamond_workflow", "--version", "1.0.0",
		"--context", "@"+ctxFile, "--initiator", "me")

	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "created task "+taskUUID+" (diamond_workflow, 4 steps)")
	require.Regexp(t, `diamond_end\s+0190f0b2-6c1a-7000-8000-0000000000a4`, r.stdout)
	require.JSONEq(t, `{"name":"diamond_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":2},"initiator":"me"}`,
		o.bodies[0])
}

func TestServerRejectionsAreExit2AndFailuresExit1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    string
		wantCode int
		wantErr  string
		wantHits int
	}{
		// An unknown template is a mistake in the command (namespace, name or
		// version): running it again cannot succeed, so it is a usage error (2),
		// not a task or system failure (1).
		{name: "unknown template", reply: `404 {"error":{"code":"NOT_FOUND","message":"Task template not found: examples/nope/1.0.0"}}`,
			wantCode: exitUsage, wantErr: "404 NOT_FOUND: Task template not found: examples/nope/1.0.0", wantHits: 1},
		{name: "context rejected", reply: `400 {"error":{"code":"BAD_REQUEST","message":"Context exceeds maximum nesting depth"}}`,
			wantCode: exitUsage, wantErr: "400 BAD_REQUEST: Context exceeds maximum nesting depth", wantHits: 1},
		{name: "unauthorized", reply: `401 {"error":{"code":"AUTHENTICATION_FAILED","message":"Invalid or expired token"}}`,
			wantCode: exitUsage, wantErr: "AUTHENTICATION_FAILED", wantHits: 1},
		{name: "server error after retries", reply: `500 {"error":{"code":"DATABASE_ERROR","message":"connection reset"}}`,
			wantCode: exitFailed, wantErr: "500 DATABASE_ERROR: connection reset", wantHits: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrchestration(t).on("POST /v1/tasks", tt.reply)
			r := o.run(t, "task", "create", "--namespace", "examples", "--name", "nope", "--version", "1.0.0", "--wait")
			require.Equal(t, tt.wantCode, r.code, r.stderr)
			require.Contains(t, r.stderr, tt.wantErr)
			require.Equal(t, tt.wantHits, o.count("POST /v1/tasks"))
			require.Zero(t, o.count(taskRoute), "no waiting after a failed create")
		})
	}
}

func TestGetListCancelSteps(t *testing.T) {
	t.Parallel()
	list := `200 {"tasks":[` + strings.TrimPrefix(taskReply("complete", 4, 0, 0), "200 ") +
		`],"pagination":{"page":1,"per_page":25,"total_count":1,"total_pages":1,"has_next":false,"has_previous":false}}`
	o := newOrchestration(t).
		on(taskRoute, taskReply("in_progress", 2, 1, 0)).
		on("GET /v1/tasks", list).
		on("DELETE /v1/tasks/"+taskUUID, taskReply("cancelled", 2, 0, 0)).
		on(stepRoute, diamondSteps)
	tests := []struct {
		name  string
		args  []string
		human []string
		json  func(t *testing.T, v any)
	}{
		{name: "get", args: []string{"task", "get", taskUUID},
			human: []string{"template   examples/diamond_workflow/1.0.0", "steps      2/4 complete (50.00%), 1 in progress"},
			json:  func(t *testing.T, v any) { require.Equal(t, "in_progress", v.(map[string]any)["status"]) }},
		{name: "list", args: []string{"task", "list", "--namespace", "examples"},
			human: []string{taskUUID + "  examples/diamond_workflow/1.0.0  complete", "page 1 of 1 (1 tasks)"},
			json: func(t *testing.T, v any) {
				m := v.(map[string]any)
				require.Len(t, m["tasks"], 1)
				require.Equal(t, 1.0, m["pagination"].(map[string]any)["total_count"])
			}},
		{name: "cancel", args: []string{"task", "cancel", taskUUID},
			human: []string{"task " + taskUUID + " is cancelled"},
			json:  func(t *testing.T, v any) { require.Equal(t, "cancelled", v.(map[string]any)["status"]) }},
		{name: "steps", args: []string{"task", "steps", taskUUID},
			human: []string{"diamond_end", "256", "diamond_branch_b"},
			json: func(t *testing.T, v any) {
				steps := v.([]any)
				require.Len(t, steps, 4)
				require.Equal(t, "diamond_end", steps[0].(map[string]any)["name"])
				require.Equal(t, 256.0, steps[0].(map[string]any)["results"].(map[string]any)["result"])
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := o.run(t, tt.args...)
			require.Equal(t, exitOK, r.code, r.stderr)
			for _, want := range tt.human {
				require.Contains(t, r.stdout, want)
			}
			r = o.run(t, append(tt.args, "--output", "json")...)
			require.Equal(t, exitOK, r.code, r.stderr)
			var v any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
			tt.json(t, v)
		})
	}
}

func TestGetUnknownTaskIsExit2(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).on(taskRoute, `404 {"error":{"code":"NOT_FOUND","message":"Task not found"}}`)
	r := o.run(t, "task", "get", taskUUID)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "get task "+taskUUID+": GET /v1/tasks/"+taskUUID+": 404 NOT_FOUND: Task not found")
}
