package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func runMigrateCmd(t *testing.T, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runWith(append([]string{"migrate"}, args...), &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// requireOneLine checks the failure contract: exit 1 and exactly one line on stderr.
func requireOneLine(t *testing.T, code int, stderr, want string) {
	t.Helper()
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	require.True(t, strings.HasPrefix(stderr, "tasker-orchestration migrate: "), stderr)
	require.Contains(t, stderr, want)
	require.NotContains(t, stderr, "goroutine")
}

func TestMigrateAppliesThenReportsUpToDate(t *testing.T) {
	dsn := testdb.EmptyURL(t)
	code, out, errOut := runMigrateCmd(t, nil, map[string]string{"DATABASE_URL": dsn})
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied 00001_uuid_v7.sql")
	require.Contains(t, out, "applied 00003_pgmq.sql")
	require.Contains(t, out, "migration(s)")

	// The flag wins over the environment.
	code, out, errOut = runMigrateCmd(t, []string{"--database-url", dsn}, map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/nope_test"})
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "database is up to date, no migration applied\n", out)

	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	defer db.Close()
	var hasMeta bool
	require.NoError(t, db.Get(&hasMeta, "SELECT to_regclass('pgmq.meta') IS NOT NULL"))
	require.True(t, hasMeta)
}

func TestMigrateFailuresAreOneClearLine(t *testing.T) {
	base := testdb.EmptyURL(t) // skips without a server
	missing := withDBName(t, base, "tasker_missing_db_test")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no url", nil, nil, "set DATABASE_URL or pass --database-url"},
		{"malformed url", nil, map[string]string{"DATABASE_URL": "postgres://u:s3cret@host:notaport/db_test"}, "invalid database URL"},
		{"not a dsn", []string{"--database-url", "not a url"}, nil, "invalid database URL"},
		{"unreachable server", nil, map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x_test?sslmode=disable"}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"missing database", nil, map[string]string{"DATABASE_URL": missing}, `database does not exist: database "tasker_missing_db_test" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runMigrateCmd(t, tc.args, tc.env)
			require.Empty(t, out)
			requireOneLine(t, code, errOut, tc.want)
			require.NotContains(t, errOut, "s3cret")
		})
	}
}

func TestMigratePermissionDenied(t *testing.T) {
	dsn := testdb.EmptyURL(t)
	admin, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() }) // after the role is dropped (cleanups run last-in first-out)
	role := fmt.Sprintf("tasker_noperm_test_%d", os.Getpid())
	_, err = admin.Exec(`CREATE ROLE ` + role + ` LOGIN`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec(`DROP ROLE IF EXISTS ` + role)
		require.NoError(t, err)
	})

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(role)
	code, out, errOut := runMigrateCmd(t, nil, map[string]string{"DATABASE_URL": u.String()})
	require.Empty(t, out)
	requireOneLine(t, code, errOut, "permission denied")
}

func TestMigrateBadFlag(t *testing.T) {
	code, _, errOut := runMigrateCmd(t, []string{"--nope"}, nil)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown flag: --nope")
	code, _, errOut = runMigrateCmd(t, []string{"extra"}, nil)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unexpected argument "extra"`)
}

func withDBName(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}
