// Command demo is Tasker's first run, from the repository root:
//
//	bash tests/demo.sh      (or: go run ./tests/demo)
//
// It prepares DATABASE_URL (default: the local PostgreSQL, database
// tasker_demo, created if missing), builds the three binaries (reporting
// progress, since a first build takes a minute or two), migrates, starts the orchestration and one worker on
// free loopback ports with the embedded default configuration, submits the
// four example workflows with even_number = 2 through `taskerctl task create
// --wait`, prints each final state and number, and shuts both services down
// with SIGTERM. Exit 0 only if every workflow completed with its known answer
// and both services stopped cleanly.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// stopGrace is above both services' 30 s shutdown timeout.
const stopGrace = 45 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// bin/ is what `task build` fills and is git-ignored.
	code := run(ctx, options{root: ".", binDir: "bin"}, os.Stdout, os.Getenv)
	stop()
	os.Exit(code)
}

// options locate the checkout and the build output (tests use a temp dir).
type options struct {
	root   string
	binDir string
}

// demo is one run; services started so far are stopped on every exit path.
type demo struct {
	options
	logDir   string
	out      io.Writer
	started  time.Time
	services []*service
}

// StartedEnv, when set to a Unix time in seconds, is when the run began:
// tests/demo.sh sets it before compiling this program, so that the wall
// time printed at the end includes every build the first run waits for.
const StartedEnv = "TASKER_DEMO_STARTED"

func run(ctx context.Context, opts options, out io.Writer, getenv func(string) string) int {
	started, since := startTime(getenv(StartedEnv), time.Now())
	d := &demo{options: opts, logDir: filepath.Join(opts.binDir, "demo-logs"), out: out, started: started}
	code := d.run(ctx, getenv)
	d.stopAll()
	fmt.Fprintf(out, "\nwall time %s (%s)\n", time.Since(d.started).Round(100*time.Millisecond), since)
	return code
}

// startTime is the run's start: the Unix seconds in env when they are a
// plausible past time (not after now, within a day), else now.
func startTime(env string, now time.Time) (time.Time, string) {
	if sec, err := strconv.ParseInt(strings.TrimSpace(env), 10, 64); err == nil {
		t := time.Unix(sec, 0)
		if !t.After(now) && now.Sub(t) < 24*time.Hour {
			return t, "since tests/demo.sh started, including compiling the demo and the binaries"
		}
	}
	return now, "including the build of the binaries; not the compile of this program by go run"
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n== "+format+"\n", args...)
}

func (d *demo) fail(err error) int {
	fmt.Fprintf(d.out, "\ndemo failed: %v\n", err)
	if p, ok := err.(*dbProblem); ok && p.advice != "" {
		fmt.Fprintln(d.out, p.advice)
	}
	return 1
}

func (d *demo) run(ctx context.Context, getenv func(string) string) int {
	if _, err := os.Stat(filepath.Join(d.root, "go.mod")); err != nil {
		return d.fail(fmt.Errorf("run it from the repository root: go run ./tests/demo"))
	}
	dbURL := getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}

	d.step("1/6 PostgreSQL: %s", redact(dbURL))
	created, err := ensureDatabase(ctx, dbURL)
	if err != nil {
		return d.fail(err)
	}
	if created {
		fmt.Fprintln(d.out, "    created the database")
	} else {
		fmt.Fprintln(d.out, "    reachable")
	}

	binDir, err := filepath.Abs(d.binDir)
	if err != nil {
		return d.fail(err)
	}
	d.step("2/6 build: go build -trimpath -o %s/ ./cmd/...", d.binDir)
	if err := d.build(ctx, binDir, "./cmd/..."); err != nil {
		return d.fail(err)
	}
	bin := func(name string) string { return filepath.Join(binDir, name) }
	for _, name := range []string{"tasker-orchestration", "tasker-worker", "taskerctl"} {
		if _, err := os.Stat(bin(name)); err != nil {
			return d.fail(fmt.Errorf("%s was not built: %w", bin(name), err))
		}
	}

	d.step("3/6 migrate: tasker-orchestration migrate")
	common := []string{"DATABASE_URL=" + dbURL, "TASKER_ENV=development"}
	if err := d.command(ctx, common, bin("tasker-orchestration"), "migrate"); err != nil {
		return d.fail(err)
	}

	logDir := d.logDir
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return d.fail(err)
	}
	orchAddr, err := freePort()
	if err != nil {
		return d.fail(err)
	}
	apiURL := "http://" + orchAddr
	d.step("4/6 start the orchestration on %s (log %s/orchestration.log)", apiURL, logDir)
	orch, err := startService("orchestration", d.root, bin("tasker-orchestration"),
		append(common, "TASKER_ORCHESTRATION__BIND_ADDRESS="+orchAddr),
		filepath.Join(logDir, "orchestration.log"), "serve")
	if err != nil {
		return d.fail(err)
	}
	d.services = append(d.services, orch)
	t0 := time.Now()
	if err := orch.waitReady(ctx, apiURL+"/ready", 60*time.Second); err != nil {
		return d.fail(err)
	}
	fmt.Fprintf(d.out, "    ready in %s\n", time.Since(t0).Round(time.Millisecond))

	workerAddr, err := freePort()
	if err != nil {
		return d.fail(err)
	}
	d.step("5/6 start one worker for namespace examples on http://%s (log %s/worker.log)", workerAddr, logDir)
	worker, err := startService("worker", d.root, bin("tasker-worker"),
		append(common, "TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS="+workerAddr,
			"TASKER_ORCHESTRATION_API__BASE_URL="+apiURL),
		filepath.Join(logDir, "worker.log"))
	if err != nil {
		return d.fail(err)
	}
	d.services = append(d.services, worker)
	t0 = time.Now()
	if err := worker.waitReady(ctx, "http://"+workerAddr+"/health/ready", 60*time.Second); err != nil {
		return d.fail(err)
	}
	fmt.Fprintf(d.out, "    ready in %s\n", time.Since(t0).Round(time.Millisecond))

	d.step("6/6 submit the four example workflows with even_number = %d", evenNumber)
	var outcomes []outcome
	for _, w := range workflows {
		if ctx.Err() != nil {
			return d.fail(ctx.Err())
		}
		outcomes = append(outcomes, submit(ctx, bin("taskerctl"), apiURL, w, d.out))
	}

	d.step("shut down (SIGTERM)")
	stoppedCleanly := d.stopAll()

	d.step("summary")
	allOK := d.summary(outcomes)
	if !allOK || !stoppedCleanly {
		fmt.Fprintf(d.out, "\nsomething went wrong: see the output above and %s/\n", d.logDir)
		return 1
	}
	fmt.Fprintln(d.out, "\nall four workflows completed with the expected results; both services stopped cleanly")
	return 0
}

// command runs a short command with its output indented under the step.
func (d *demo) command(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = d.root
	cmd.Env = append(os.Environ(), env...)
	iw := &indentWriter{w: d.out}
	cmd.Stdout, cmd.Stderr = iw, iw
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w", name, args, err)
	}
	fmt.Fprintf(d.out, "    ok (%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// stopAll stops the running services, newest first (the worker before the
// orchestration it reports to), and reports whether each exited 0.
func (d *demo) stopAll() bool {
	clean := true
	for i := len(d.services) - 1; i >= 0; i-- {
		s := d.services[i]
		took, err := s.stop(stopGrace)
		if err != nil {
			clean = false
			fmt.Fprintf(d.out, "    %s: %v; last lines of %s:\n%s\n", s.name, err, s.logPath, s.tail(10))
			continue
		}
		fmt.Fprintf(d.out, "    %s stopped cleanly (exit 0) in %s\n", s.name, took.Round(time.Millisecond))
	}
	d.services = nil
	return clean
}

func (d *demo) summary(outcomes []outcome) bool {
	tw := tabwriter.NewWriter(d.out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "    WORKFLOW\tSTATE\tLAST STEP\tRESULT\tEXPECTED\tTIME\t")
	allOK := len(outcomes) == len(workflows)
	for _, o := range outcomes {
		mark := "ok"
		if !o.ok() {
			mark, allOK = "FAILED", false
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.workflow.name, orDash(o.state), orDash(o.step),
			orDash(o.result), o.workflow.want, o.elapsed.Round(time.Millisecond), mark)
	}
	_ = tw.Flush()
	return allOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
