// Package testdb gives each test an isolated, fully migrated PostgreSQL database.
//
// The server comes from TASKER_TEST_DATABASE_URL, else from a testcontainers
// Postgres container, else the test is skipped — except under CI=true, where a
// missing database fails the test so that CI can never go green by skipping.
//
// Each test process migrates one template database (its name carries a hash of the
// embedded migrations, so changed SQL yields a new template) and every New/URL call
// clones it with CREATE DATABASE … TEMPLATE, which takes milliseconds. Clones are
// dropped in t.Cleanup. Every database name contains "test", and a base URL whose
// database name lacks it is refused, so the harness cannot drop a real database.
package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/adapters/postgres/batchtx"
	"github.com/tasker-systems/tasker-go/adapters/postgres/migrations"
)

// EnvURL names the environment variable holding the base DSN, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Its database is only
// used to connect; tests never write to it.
const EnvURL = "TASKER_TEST_DATABASE_URL"

// templateLockKey is the pg advisory lock that serialises template creation
// across test processes (go test ./... runs packages in parallel).
const templateLockKey int64 = 0x7461736b6572 // "tasker"

var (
	baseOnce sync.Once
	baseDSN  string
	baseErr  error // non-nil: no server available (skip or fail per CI)

	tmplMu    sync.Mutex
	templates = map[string]string{} // base DSN → ready template name

	dbSeq atomic.Int64
)

// New returns a connection pool to a fresh database cloned from the migrated
// template. It is closed and the database dropped when the test ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	u := URL(t)
	// Over batchtx.WrapConnector like the services' pools (postgres.Open),
	// so tests run the batch transactions as production begins them.
	connector, err := pq.NewConnector(u)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", redact(u), err)
	}
	db := sqlx.NewDb(sql.OpenDB(batchtx.WrapConnector(connector)), "postgres")
	t.Cleanup(func() { _ = db.Close() }) // registered after URL's drop, so it runs first
	if err := db.Ping(); err != nil {
		t.Fatalf("testdb: ping %s: %v", redact(u), err)
	}
	return db
}

// URL creates a fresh migrated database like New and returns its DSN (with
// timezone=UTC), for code that opens its own connections: listeners, the
// migrate command, services under test.
func URL(t testing.TB) string {
	t.Helper()
	base := requireBase(t)
	tmpl, err := ensureTemplate(base)
	if err != nil {
		t.Fatalf("testdb: template database: %v", err)
	}
	return createDatabase(t, base, "TEMPLATE "+quoteIdent(tmpl))
}

// CloneURL creates a fresh database copied from the database src names (a
// database created by this package, e.g. with URL and then filled by the test)
// and returns its DSN; it is dropped when the test ends. src must have no
// other session while it is copied. FILE_COPY copies the files instead of
// WAL-logging every block, which is much faster for a large source (at the
// price of a checkpoint).
func CloneURL(t testing.TB, src string) string {
	t.Helper()
	if err := CheckURL(src); err != nil {
		t.Fatalf("testdb: clone: %v", err)
	}
	name, _ := databaseName(src)
	return createDatabase(t, requireBase(t), "TEMPLATE "+quoteIdent(name)+" STRATEGY FILE_COPY")
}

// EmptyURL creates a fresh database without any migration applied (cloned from
// template0) and returns its DSN; for tests of the migrations themselves.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return createDatabase(t, requireBase(t), "TEMPLATE template0")
}

func createDatabase(t testing.TB, base, clause string) string {
	t.Helper()
	baseName, _ := databaseName(base)
	name := uniqueName(baseName)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, base, "CREATE DATABASE "+quoteIdent(name)+" "+clause); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, base, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return u
}

// requireBase returns the base DSN, or ends the test: skip locally, fail under CI.
func requireBase(t testing.TB) string {
	t.Helper()
	baseOnce.Do(func() { baseDSN, baseErr = resolveBase() })
	if baseErr != nil {
		if Unavailable(baseErr, os.Getenv("CI")) == Fail {
			t.Fatalf("testdb: %v (a database is required under CI=true; set %s)", baseErr, EnvURL)
		}
		t.Skipf("testdb: no PostgreSQL available, skipping (set %s): %v", EnvURL, baseErr)
	}
	return baseDSN
}

// Verdict is what a test does when no usable database is available.
type Verdict int

// The two verdicts of Unavailable.
const (
	Skip Verdict = iota
	Fail
)

// Unavailable decides between skipping and failing: a refused URL always fails
// (it is a configuration error, not a missing server); otherwise CI fails and a
// developer machine skips.
func Unavailable(err error, ciEnv string) Verdict {
	var refused *RefusedURLError
	if errors.As(err, &refused) || MustFail(ciEnv) {
		return Fail
	}
	return Skip
}

// resolveBase picks the server: the env URL if set, else a container.
func resolveBase() (string, error) {
	raw := strings.TrimSpace(os.Getenv(EnvURL))
	if raw == "" {
		c, err := startContainer()
		if err != nil {
			return "", fmt.Errorf("%s unset and no container runtime: %w", EnvURL, err)
		}
		raw = c
	}
	if err := CheckURL(raw); err != nil {
		return "", err
	}
	dsn, err := WithUTC(raw)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ping(ctx, dsn); err != nil {
		return "", fmt.Errorf("connect %s: %w", redact(dsn), err)
	}
	return dsn, nil
}

// MustFail reports whether an unavailable database must fail the test rather than
// skip it, given the value of the CI environment variable.
func MustFail(ciEnv string) bool {
	switch strings.ToLower(strings.TrimSpace(ciEnv)) {
	case "1", "t", "true", "yes", "on":
		return true
	}
	return false
}

// RefusedURLError is returned for a DSN the harness will not touch: malformed, or
// naming a database without "test" in its name (the harness creates and drops
// databases next to it).
type RefusedURLError struct {
	URL    string
	Reason string
}

func (e *RefusedURLError) Error() string {
	return fmt.Sprintf("refusing test database URL %s: %s", redact(e.URL), e.Reason)
}

// CheckURL accepts a DSN (URL or key=value form) only if its database name
// contains "test".
func CheckURL(raw string) error {
	name, err := databaseName(raw)
	if err != nil {
		return &RefusedURLError{URL: raw, Reason: err.Error()}
	}
	if name == "" {
		return &RefusedURLError{URL: raw, Reason: "no database name"}
	}
	if !strings.Contains(strings.ToLower(name), "test") {
		return &RefusedURLError{URL: raw, Reason: fmt.Sprintf("database name %q does not contain \"test\"", name)}
	}
	return nil
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// templateName derives the template database name from the base database and the
// migrations fingerprint; it stays under PostgreSQL's 63-byte identifier limit.
func templateName(baseName string) string {
	return ensureTest(shorten(baseName, 24) + "_tmpl_" + migrations.Fingerprint())
}

// uniqueName is a per-test database name, unique across processes and calls.
func uniqueName(baseName string) string {
	return ensureTest(fmt.Sprintf("%s_%d_%d_%d", shorten(baseName, 20), os.Getpid(), time.Now().UnixMilli()%1_000_000, dbSeq.Add(1)))
}

func shorten(name string, n int) string {
	s := nonIdent.ReplaceAllString(strings.ToLower(name), "_")
	if len(s) > n {
		sum := sha256.Sum256([]byte(name))
		s = s[:n-7] + "_" + hex.EncodeToString(sum[:])[:6]
	}
	return s
}

func ensureTest(name string) string {
	if strings.Contains(name, "test") {
		return name
	}
	return "test_" + name
}

// ensureTemplate creates and migrates the template once per process and base. An
// advisory lock makes concurrent processes wait for the one that builds it; a
// database that exists without the IS_TEMPLATE mark was left half-built by a
// crashed run and is rebuilt.
func ensureTemplate(base string) (string, error) {
	tmplMu.Lock()
	defer tmplMu.Unlock()
	if name, ok := templates[base]; ok {
		return name, nil
	}
	baseName, _ := databaseName(base)
	name := templateName(baseName)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	admin, err := sql.Open("postgres", base)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("advisory lock: %w", err)
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck // the lock dies with the session anyway

	var isTemplate sql.NullBool
	err = conn.QueryRowContext(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate.Bool:
		templates[base] = name
		return name, nil
	case err == nil:
		if _, err := conn.ExecContext(ctx, "DROP DATABASE "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop half-built %s: %w", name, err)
		}
	case err != sql.ErrNoRows:
		return "", fmt.Errorf("look up %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if err := migrate(ctx, base, name); err != nil {
		return "", fmt.Errorf("migrate %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+quoteIdent(name)+" WITH IS_TEMPLATE true"); err != nil {
		return "", fmt.Errorf("mark %s as template: %w", name, err)
	}
	templates[base] = name
	return name, nil
}

func migrate(ctx context.Context, base, name string) error {
	u, err := withDatabase(base, name)
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", u)
	if err != nil {
		return err
	}
	defer db.Close()
	return migrations.Apply(ctx, db)
}

func adminExec(ctx context.Context, base, stmt string) error {
	db, err := sql.Open("postgres", base)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
