package main

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

func TestParseOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		stdout              string
		state, step, result string
	}{
		{name: "complete", stdout: "task 0190 complete after 531ms: 4/4 steps complete\nresult of diamond_end: 256\n",
			state: "complete", step: "diamond_end", result: "256"},
		{name: "error", stdout: "task 0190 error after 1s: 0/4 steps complete\nstep diamond_start failed: validation: odd\n",
			state: "error"},
		{name: "nothing", stdout: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state, step, result := parseOutcome(tt.stdout)
			require.Equal(t, []string{tt.state, tt.step, tt.result}, []string{state, step, result})
		})
	}
}

func TestOutcomeOK(t *testing.T) {
	t.Parallel()
	w := workflow{name: "diamond_workflow", want: "256"}
	require.True(t, outcome{workflow: w, state: "complete", result: "256"}.ok())
	require.False(t, outcome{workflow: w, state: "complete", result: "255"}.ok())
	require.False(t, outcome{workflow: w, state: "error", result: "256"}.ok())
	require.False(t, outcome{workflow: w, exitCode: 1, state: "complete", result: "256"}.ok())
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:xxxxx@h:5432/db", redact("postgres://u:secret@h:5432/db"))
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/tasker_demo?sslmode=disable", redact(defaultDatabaseURL))
}

func TestIndentWriter(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w := &indentWriter{w: &b}
	_, _ = w.Write([]byte("a\nb"))
	_, _ = w.Write([]byte("c\n\nd\n"))
	require.Equal(t, "    a\n    bc\n    \n    d\n", b.String())
}

func TestNoPostgresGivesAdvice(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	code := run(context.Background(), options{root: filepath.Join("..", ".."), binDir: t.TempDir()}, &out,
		func(k string) string {
			if k == "DATABASE_URL" {
				return "postgres://postgres@127.0.0.1:1/tasker_demo?sslmode=disable"
			}
			return ""
		})
	require.Equal(t, 1, code)
	require.Contains(t, out.String(), "no PostgreSQL answers at 127.0.0.1:1")
	require.Contains(t, out.String(), "docker compose -f deployments/docker-compose.yml up -d postgres")
	require.NotContains(t, out.String(), "2/6 build", "stops before building")
}

func TestEnsureDatabaseCreatesAMissingDatabase(t *testing.T) {
	t.Parallel()
	existing := testdb.EmptyURL(t)
	u, err := url.Parse(existing)
	require.NoError(t, err)
	missing := *u
	missing.Path += "_demo"
	admin := *u
	admin.Path = "/postgres"
	t.Cleanup(func() {
		db, err := sql.Open("postgres", admin.String())
		if err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(strings.TrimPrefix(missing.Path, "/")))
			_ = db.Close()
		}
	})

	created, err := ensureDatabase(context.Background(), missing.String())
	require.NoError(t, err)
	require.True(t, created)
	created, err = ensureDatabase(context.Background(), missing.String())
	require.NoError(t, err)
	require.False(t, created, "second run finds it")
}

// TestDemoEndToEnd runs the whole first-run demo on an empty database: build,
// migrate, orchestration + worker binaries, the four workflows, shutdown.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the three binaries")
	}
	dbURL := testdb.EmptyURL(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	code := run(ctx, options{root: filepath.Join("..", ".."), binDir: t.TempDir()}, &out,
		func(k string) string {
			if k == "DATABASE_URL" {
				return dbURL
			}
			return ""
		})

	t.Log("\n" + out.String())
	require.Equal(t, 0, code)
	for _, w := range workflows {
		require.Regexp(t, `(?m)^\s+`+w.name+`\s+complete\s+\S+\s+`+w.want+`\s+`+w.want+`\s+\S+\s+ok$`, out.String())
	}
	require.Contains(t, out.String(), "the first run (empty Go build", "the build says it may take a while")
	require.Regexp(t, `(?m)^    ok \(\S+, \d+ packages compiled, the rest from the build cache\)$`, out.String())
	require.Regexp(t, `(?m)^wall time \S+ \(including the build of the binaries`, out.String())
	require.Contains(t, out.String(), "worker stopped cleanly (exit 0)")
	require.Contains(t, out.String(), "orchestration stopped cleanly (exit 0)")
}
