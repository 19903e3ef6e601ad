package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
		{name: "unknown global flag", args: []string{"--colour", "task"}, wantErr: "unknown flag: --colour"},
		{name: "bad output", args: []string{"--output", "yaml", "health"}, wantErr: `--output must be table or json, got "yaml"`},
		{name: "bad output after the command", args: []string{"health", "--output", "xml"}, wantErr: "--output must be table or json"},
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
		{name: "list with non-numeric page", args: []string{"task", "list", "--page", "two"}, wantErr: `invalid argument "two" for "--page" flag`},
		{name: "template without subcommand", args: []string{"template"}, wantErr: "template: missing subcommand (list, validate)"},
		{name: "template validate without files", args: []string{"template", "validate"}, wantErr: "missing FILE..."},
		{name: "unknown step subcommand", args: []string{"step", "fix"}, wantErr: `step: unknown subcommand "fix" (get, resolve)`},
		{name: "resolve without reason", args: []string{"step", "resolve", taskUUID, taskUUID, "--resolved-by", "me"},
			wantErr: "--resolved-by and --reason are required"},
		{name: "resolve with bad step uuid", args: []string{"step", "resolve", taskUUID, "x", "--resolved-by", "me", "--reason", "r"},
			wantErr: `"x" is not a step UUID`},
		{name: "resolve with non-object data", args: []string{"step", "resolve", taskUUID, taskUUID, "--resolved-by", "me",
			"--reason", "r", "--data", "[1]"}, wantErr: "--data must be a JSON object"},
		{name: "template list with argument", args: []string{"template", "list", "extra"}, wantErr: `template list: unexpected argument "extra"`},
		{name: "health with argument", args: []string{"health", "now"}, wantErr: `health: unexpected argument "now"`},
		{name: "version with argument", args: []string{"version", "x"}, wantErr: `unexpected argument "x"`},
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
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "task", "create"}} {
		r := runCLI(t, nil, args...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stdout, "Usage:", args)
		require.Empty(t, r.stderr, args)
	}
	r := runCLI(t, nil, "task", "create", "--help")
	require.Contains(t, r.stdout, "taskerctl task create --namespace NS --name NAME --version V")
}

// TestEveryCommandHasHelp walks the whole command tree: every command and
// subcommand answers --help with its usage on stdout and exit 0, and has a
// short description.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	c := &cli{getenv: func(string) string { return "" }}
	root := c.rootCommand()
	root.InitDefaultCompletionCmd()
	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		if cmd.Hidden {
			return
		}
		require.NotEmpty(t, cmd.Short, "command %v has no short description", path)
		paths = append(paths, path)
		for _, sub := range cmd.Commands() {
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(root, nil)
	require.GreaterOrEqual(t, len(paths), 20, "the tree: %v", paths)
	for _, p := range paths {
		r := runCLI(t, nil, append(p, "--help")...)
		require.Equal(t, exitOK, r.code, "%v --help: %s", p, r.stderr)
		require.Contains(t, r.stdout, "Usage:", "%v --help", p)
		require.Contains(t, r.stdout, "taskerctl "+strings.Join(p, " "), "%v --help names the command", p)
		require.Empty(t, r.stderr)
	}
	t.Logf("%d commands answer --help", len(paths))
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := runCLI(t, nil, args...)
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Regexp(t, `^taskerctl \S+ \(go1\.\d+`, r.stdout)
	}
	r := runCLI(t, nil, "version", "-o", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	require.NotEmpty(t, v["version"])
}

func TestCompletionBash(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil, "completion", "bash")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "complete -o default -F __start_taskerctl taskerctl")
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
		on(stepRoute, diamondSteps).
		on("GET /v1/templates", `200 [{"namespace":"examples","name":"diamond_workflow","version":"1.0.0",`+
			`"description":"a diamond","updated_at":"2026-01-02T03:04:05Z"}]`).
		on("GET "+stepPath, "200 "+stepJSON(4, "diamond_end", "complete", 2, "06.900000", okResult("256"))).
		on("PATCH "+stepPath, "200 "+stepJSON(4, "diamond_end", "resolved_manually", 2, "06.900000", okResult(`{"fixed":true}`)))
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
		{name: "template list", args: []string{"template", "list"},
			human: []string{"NAMESPACE", "examples   diamond_workflow  1.0.0"},
			json:  func(t *testing.T, v any) { require.Equal(t, "diamond_workflow", v.([]any)[0].(map[string]any)["name"]) }},
		{name: "step get", args: []string{"step", "get", taskUUID, stepUUID},
			human: []string{"diamond_end", "complete", "256"},
			json:  func(t *testing.T, v any) { require.Equal(t, "diamond_end", v.([]any)[0].(map[string]any)["name"]) }},
		{name: "step resolve", args: []string{"step", "resolve", taskUUID, stepUUID, "--resolved-by", "alice",
			"--reason", "fixed by hand", "--data", `{"fixed": true}`},
			human: []string{"step " + stepUUID + " (diamond_end) is resolved_manually"},
			json: func(t *testing.T, v any) {
				require.Equal(t, "resolved_manually", v.(map[string]any)["current_state"])
			}},
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
	require.Contains(t, o.bodies, `{"resolution_data":{"fixed":true},"resolved_by":"alice","reason":"fixed by hand"}`)
}

func TestGetUnknownTaskIsExit2(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).on(taskRoute, `404 {"error":{"code":"NOT_FOUND","message":"Task not found"}}`)
	r := o.run(t, "task", "get", taskUUID)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "get task "+taskUUID+": GET /v1/tasks/"+taskUUID+": 404 NOT_FOUND: Task not found")
}

const stepUUID = "0190f0b2-6c1a-7000-8000-0000000000a4"

var stepPath = "/v1/tasks/" + taskUUID + "/workflow_steps/" + stepUUID

// TestCompletionLoadsInBash sources `taskerctl completion bash` in a real
// bash and asks it to complete partial command lines; the script calls the
// binary back (the test binary acting as taskerctl). bash-completion's
// _get_comp_words_by_ref is replaced by a minimal equivalent when the
// package is not installed, and compopt (valid only during an interactive
// completion) by a no-op.
func TestCompletionLoadsInBash(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(self, filepath.Join(dir, "taskerctl")))
	script := `
if ! type _get_comp_words_by_ref >/dev/null 2>&1; then
  _get_comp_words_by_ref() { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
fi
source <(taskerctl completion bash)
complete -p taskerctl
compopt() { :; } # only valid inside a real completion; the words are what we check
for line in "taskerctl t" "taskerctl task c" "taskerctl step " "taskerctl task list --status e"; do
  read -ra COMP_WORDS <<<"$line"
  [[ "$line" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_LINE="$line"; COMP_POINT=${#line}
  __start_taskerctl
  echo "$line => ${COMPREPLY[*]}"
done
`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), envRunAsMain+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	t.Logf("bash:\n%s", out)
	require.Contains(t, string(out), "complete -o default -F __start_taskerctl taskerctl")
	require.Contains(t, string(out), "taskerctl t => task template")
	require.Contains(t, string(out), "taskerctl task c => cancel create")
	require.Contains(t, string(out), "taskerctl step  => get resolve")
	require.Contains(t, string(out), "taskerctl task list --status e => error\n")
}
