package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		dsn     string
		refused string // substring of the reason; "" = accepted
	}{
		{"url with test db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", ""},
		{"url with tasker_test_x", "postgresql://u:p@h/tasker_test_x", ""},
		{"kv form", "host=127.0.0.1 dbname=my_test user=postgres", ""},
		{"kv quoted", "host=h dbname='a test db'", ""},
		{"url dbname param", "postgres://h/?dbname=unit_test", ""},
		{"production db", "postgres://postgres@db.internal:5432/tasker_production", `"tasker_production" does not contain "test"`},
		{"kv production", "host=h dbname=tasker user=u", `"tasker" does not contain "test"`},
		{"no db name url", "postgres://postgres@127.0.0.1:5432", "no database name"},
		{"no db name kv", "host=h user=u", "no database name"},
		{"malformed kv", "host", "malformed"},
		{"unterminated quote", "dbname='test", "unterminated"},
		{"malformed url", "postgres://h:notaport/test", "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckURL(tc.dsn)
			if tc.refused == "" {
				require.NoError(t, err)
				return
			}
			var refused *RefusedURLError
			require.ErrorAs(t, err, &refused)
			require.Contains(t, err.Error(), tc.refused)
		})
	}
}

func TestRefusedURLErrorHidesPassword(t *testing.T) {
	t.Parallel()
	err := CheckURL("postgres://u:s3cret@h/prod")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
	err = CheckURL("host=h password=s3cret dbname=prod")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestUnavailableVerdict(t *testing.T) {
	t.Parallel()
	noServer := errors.New("connect: connection refused")
	refused := CheckURL("postgres://h/prod")
	cases := []struct {
		name string
		err  error
		ci   string
		want Verdict
	}{
		{"no server locally skips", noServer, "", Skip},
		{"no server with CI=false skips", noServer, "false", Skip},
		{"no server under CI=true fails", noServer, "true", Fail},
		{"no server under CI=1 fails", noServer, "1", Fail},
		{"refused URL fails locally", refused, "", Fail},
		{"wrapped refused URL fails", errors.Join(errors.New("x"), refused), "", Fail},
		{"refused URL fails under CI", refused, "true", Fail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Unavailable(tc.err, tc.ci))
		})
	}
}

func TestDSNRewriting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, dsn, wantDB, wantUTC string
	}{
		{"url", "postgres://u@h:5432/test?sslmode=disable", "postgres://u@h:5432/other_test?sslmode=disable",
			"postgres://u@h:5432/test?sslmode=disable&timezone=UTC"},
		{"url dbname param", "postgres://u@h/?dbname=test", "postgres://u@h/other_test", "postgres://u@h/?dbname=test&timezone=UTC"},
		{"kv", "host=h dbname=test", "host=h dbname=other_test", "host=h dbname=test timezone=UTC"},
		{"kv replaces timezone", "dbname=test timezone=Europe/Paris", "dbname=other_test timezone=Europe/Paris", "dbname=test timezone=UTC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := withDatabase(tc.dsn, "other_test")
			require.NoError(t, err)
			require.Equal(t, tc.wantDB, got)
			name, err := databaseName(got)
			require.NoError(t, err)
			require.Equal(t, "other_test", name)
			got, err = WithUTC(tc.dsn)
			require.NoError(t, err)
			require.Equal(t, tc.wantUTC, got)
		})
	}
}

func TestGeneratedNamesContainTestAndFit(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"test", "x", strings.Repeat("very_long_database_name_", 5) + "test"} {
		for _, n := range []string{templateName(base), uniqueName(base)} {
			require.Contains(t, n, "test", "base %q", base)
			require.LessOrEqual(t, len(n), 63, "base %q: %q", base, n)
			require.Regexp(t, `^[a-z0-9_]+$`, n)
		}
	}
	require.NotEqual(t, uniqueName("test"), uniqueName("test"))
}

func TestNewGivesIsolatedMigratedUTCDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var firstName string
	t.Run("first", func(t *testing.T) {
		db := New(t)
		require.NoError(t, db.GetContext(ctx, &firstName, "SELECT current_database()"))
		require.Contains(t, firstName, "test")
		var tz string
		require.NoError(t, db.GetContext(ctx, &tz, "SHOW TimeZone"))
		require.Equal(t, "UTC", tz)
		var hasMeta bool
		require.NoError(t, db.GetContext(ctx, &hasMeta, "SELECT to_regclass('pgmq.meta') IS NOT NULL"))
		require.True(t, hasMeta, "migrations applied")
		_, err := db.ExecContext(ctx, "CREATE TABLE only_here (id int)")
		require.NoError(t, err)
	})

	db := New(t)
	var visible bool
	require.NoError(t, db.GetContext(ctx, &visible, "SELECT to_regclass('public.only_here') IS NOT NULL"))
	require.False(t, visible, "databases are isolated")
	var exists bool
	require.NoError(t, db.GetContext(ctx, &exists, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", firstName))
	require.False(t, exists, "first database dropped at cleanup")
}

func TestEmptyURLHasNoMigrations(t *testing.T) {
	t.Parallel()
	db, err := ping2(EmptyURL(t))
	require.NoError(t, err)
	defer db.Close()
	var hasMeta bool
	require.NoError(t, db.QueryRow("SELECT to_regclass('pgmq.meta') IS NOT NULL").Scan(&hasMeta))
	require.False(t, hasMeta)
}

func ping2(dsn string) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, err
	}
	return db, db.Ping()
}

// A template left half-built by a crashed run (no IS_TEMPLATE mark) is rebuilt,
// and a concurrent second caller in another "process" reuses the finished one.
func TestHalfBuiltTemplateIsRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := requireBase(t)
	baseName := fmt.Sprintf("tmplself_%d_test", os.Getpid())
	require.NoError(t, adminExec(ctx, base, "CREATE DATABASE "+quoteIdent(baseName)))
	selfBase, err := withDatabase(base, baseName)
	require.NoError(t, err)
	tmpl := templateName(baseName)
	t.Cleanup(func() {
		_ = adminExec(ctx, base, "ALTER DATABASE "+quoteIdent(tmpl)+" WITH IS_TEMPLATE false")
		_ = adminExec(ctx, base, "DROP DATABASE IF EXISTS "+quoteIdent(tmpl)+" WITH (FORCE)")
		_ = adminExec(ctx, base, "DROP DATABASE IF EXISTS "+quoteIdent(baseName)+" WITH (FORCE)")
	})

	require.NoError(t, adminExec(ctx, base, "CREATE DATABASE "+quoteIdent(tmpl)))
	half, err := withDatabase(base, tmpl)
	require.NoError(t, err)
	require.NoError(t, adminExec(ctx, half, "CREATE TABLE crashed_marker (id int)"))

	got, err := ensureTemplate(selfBase)
	require.NoError(t, err)
	require.Equal(t, tmpl, got)
	db, err := ping2(half)
	require.NoError(t, err)
	var marker, meta, isTemplate bool
	require.NoError(t, db.QueryRow("SELECT to_regclass('public.crashed_marker') IS NOT NULL, to_regclass('pgmq.meta') IS NOT NULL").Scan(&marker, &meta))
	require.NoError(t, db.QueryRow("SELECT datistemplate FROM pg_database WHERE datname = $1", tmpl).Scan(&isTemplate))
	require.NoError(t, db.Close())
	require.False(t, marker, "half-built template dropped")
	require.True(t, meta, "rebuilt template is migrated")
	require.True(t, isTemplate)

	// Forget the in-process cache, as a second test process would start without it.
	tmplMu.Lock()
	delete(templates, selfBase)
	tmplMu.Unlock()
	again, err := ensureTemplate(selfBase)
	require.NoError(t, err)
	require.Equal(t, tmpl, again)
}
