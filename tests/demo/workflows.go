package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// evenNumber is the input of every demo task.
const evenNumber = 2

// workflow is one example template and its known answer: every step squares
// its input and joins multiply, so the result is a power of the input
// (app/worker/examples).
type workflow struct {
	name string
	want string
}

// workflows are the four templates of configs/tasks/examples with
// even_number = 2: linear 2^16, diamond 2^8, mixed DAG 2^24, tree 2^32.
var workflows = []workflow{
	{name: "linear_workflow", want: "65536"},
	{name: "diamond_workflow", want: "256"},
	{name: "mixed_dag_workflow", want: "16777216"},
	{name: "tree_workflow", want: "4294967296"},
}

// outcome is what one `taskerctl task create --wait` reported.
type outcome struct {
	workflow workflow
	exitCode int
	state    string
	step     string
	result   string
	elapsed  time.Duration
}

func (o outcome) ok() bool {
	return o.exitCode == 0 && o.state == "complete" && o.result == o.workflow.want
}

var (
	stateLine  = regexp.MustCompile(`(?m)^task \S+ (\S+) after `)
	resultLine = regexp.MustCompile(`(?m)^result of (\S+): (.+)$`)
)

// parseOutcome reads taskerctl's human output (cmd/taskerctl printOutcome).
func parseOutcome(stdout string) (state, step, result string) {
	if m := stateLine.FindStringSubmatch(stdout); m != nil {
		state = m[1]
	}
	if m := resultLine.FindStringSubmatch(stdout); m != nil {
		step, result = m[1], strings.TrimSpace(m[2])
	}
	return state, step, result
}

// submit runs taskerctl for one workflow, echoing its output indented.
func submit(ctx context.Context, taskerctl, apiURL string, w workflow, out io.Writer) outcome {
	args := []string{"--url", apiURL, "task", "create", "--namespace", "examples", "--name", w.name,
		"--version", "1.0.0", "--context", fmt.Sprintf(`{"even_number": %d}`, evenNumber),
		"--wait", "--timeout", "2m", "--poll-interval", "100ms"}
	fmt.Fprintf(out, "\n$ taskerctl %s\n", quoteArgs(args))
	cmd := exec.CommandContext(ctx, taskerctl, args...)
	var stdout bytes.Buffer
	indented := &indentWriter{w: out}
	cmd.Stdout = io.MultiWriter(&stdout, indented)
	cmd.Stderr = indented
	start := time.Now()
	err := cmd.Run()
	o := outcome{workflow: w, elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.exitCode = ee.ExitCode()
	case err != nil:
		fmt.Fprintf(out, "    could not run taskerctl: %v\n", err)
		o.exitCode = -1
	}
	o.state, o.step, o.result = parseOutcome(stdout.String())
	return o
}

func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, ` {}":`) {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// indentWriter prefixes every line with four spaces. It is safe for the
// concurrent stdout and stderr copiers of one exec.Cmd.
type indentWriter struct {
	mu      sync.Mutex
	w       io.Writer
	midLine bool
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	var b bytes.Buffer
	for _, c := range p {
		if !iw.midLine {
			b.WriteString("    ")
			iw.midLine = true
		}
		b.WriteByte(c)
		if c == '\n' {
			iw.midLine = false
		}
	}
	if _, err := iw.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
