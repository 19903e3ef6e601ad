// Package migrations holds the project's database migrations, embedded in the
// binary and applied with goose (contract §1: the services never run them; the
// `tasker-orchestration migrate` command and the test harness do).
//
// Every migration is idempotent and safe on a reference database: objects that
// exist (pg_uuidv7, the pgmq extension, the reference's trigger functions) are kept.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sql/*.sql
var embedded embed.FS

// FS returns the embedded SQL files, rooted so that names are like "00001_uuid_v7.sql".
func FS() fs.FS {
	sub, err := fs.Sub(embedded, "sql")
	if err != nil {
		panic(fmt.Sprintf("migrations: embedded sql dir: %v", err)) // programmer error: the embed pattern guarantees it
	}
	return sub
}

// Applied describes one migration that Apply ran.
type Applied struct {
	Version  int64
	Name     string // file name, e.g. "00003_pgmq.sql"
	Duration string // human-readable, for the migrate command's output
}

// Status is the state of one embedded migration in a database.
type Status struct {
	Version int64
	Name    string
	Applied bool
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	// The session locker (a pg advisory lock) serialises concurrent migrate runs
	// against one database. Out-of-order is allowed because every migration is
	// idempotent and files are added by several people at once.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrations: session locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS(),
		goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: goose provider: %w", err)
	}
	return p, nil
}

// Apply runs every pending migration on db. It is Migrate without the report.
func Apply(ctx context.Context, db *sql.DB) error {
	_, err := Migrate(ctx, db)
	return err
}

// Migrate runs every pending migration on db and reports those it ran, in order.
// An up-to-date database yields an empty slice and no error.
func Migrate(ctx context.Context, db *sql.DB) ([]Applied, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	var perr *goose.PartialError
	if errors.As(err, &perr) {
		results = perr.Applied
	}
	out := make([]Applied, 0, len(results))
	for _, r := range results {
		if r == nil || r.Source == nil || r.Error != nil {
			continue
		}
		out = append(out, Applied{Version: r.Source.Version, Name: baseName(r.Source.Path), Duration: r.Duration.String()})
	}
	if perr != nil && perr.Failed != nil && perr.Failed.Source != nil {
		return out, fmt.Errorf("apply migration %s: %w", baseName(perr.Failed.Source.Path), perr.Err)
	}
	if err != nil {
		return out, fmt.Errorf("apply migrations: %w", err)
	}
	return out, nil
}

// StatusOf reports, for every embedded migration, whether db has it applied.
func StatusOf(ctx context.Context, db *sql.DB) ([]Status, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Status, 0, len(st))
	for _, s := range st {
		out = append(out, Status{Version: s.Source.Version, Name: baseName(s.Source.Path), Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

// Fingerprint is a short hash of the names and contents of the embedded SQL files.
// The test harness puts it in its template database name, so a changed migration
// yields a new, freshly migrated template instead of a stale one.
func Fingerprint() string {
	names, err := fs.Glob(FS(), "*.sql")
	if err != nil {
		panic(fmt.Sprintf("migrations: glob: %v", err)) // programmer error: constant pattern
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(FS(), n)
		if err != nil {
			panic(fmt.Sprintf("migrations: read %s: %v", n, err)) // embedded files are always readable
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
