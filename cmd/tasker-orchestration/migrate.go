package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/adapters/postgres/migrations"
)

// migrateTimeouts bound the command so that a black-holed host or a blocked lock
// ends with a message instead of hanging a deploy.
const (
	migrateConnectTimeout = 10 * time.Second
	migrateRunTimeout     = 10 * time.Minute
)

// migrateDatabase applies the embedded migrations to dbURL (or
// $DATABASE_URL), prints each migration it applied; a failure is one error
// naming the cause (the caller prints it on one line, exit 1).
func migrateDatabase(dbURL string, stdout io.Writer, getenv func(string) string) error {
	dsn := dbURL
	if dsn == "" {
		dsn = getenv("DATABASE_URL")
	}
	if strings.TrimSpace(dsn) == "" {
		return errors.New("no database: set DATABASE_URL or pass --database-url")
	}

	dsn, err := withUTC(dsn)
	if err != nil {
		return fmt.Errorf("invalid database URL: %w", err)
	}
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return fmt.Errorf("invalid database URL: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), migrateConnectTimeout)
	err = db.PingContext(ctx)
	cancel()
	if err != nil {
		return errors.New(describeDBError(err, dsn))
	}

	ctx, cancel = context.WithTimeout(context.Background(), migrateRunTimeout)
	defer cancel()
	applied, err := migrations.Migrate(ctx, db)
	for _, a := range applied {
		fmt.Fprintf(stdout, "applied %s (%s)\n", a.Name, a.Duration)
	}
	if err != nil {
		return errors.New(describeDBError(err, dsn))
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date, no migration applied")
	} else {
		fmt.Fprintf(stdout, "applied %d migration(s)\n", len(applied))
	}
	return nil
}

// describeDBError turns driver and network errors into one line naming the cause.
func describeDBError(err error, dsn string) string {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.SQLState() {
		case "3D000":
			return "database does not exist: " + pqErr.Message
		case "28000", "28P01":
			return "authentication failed: " + pqErr.Message
		case "42501":
			return "permission denied: " + pqErr.Message + contextOf(err)
		case "57P03":
			return "server is not accepting connections: " + pqErr.Message
		}
		return pqErr.Message + contextOf(err)
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("cannot reach PostgreSQL at %s: %v", hostOf(dsn), err)
	}
	return err.Error()
}

// contextOf names the migration file when the failure happened while applying one.
func contextOf(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "apply migration ") {
		if i := strings.Index(msg, ":"); i > 0 {
			return " (in " + strings.TrimPrefix(msg[:i], "apply migration ") + ")"
		}
	}
	return ""
}

// hostOf returns host:port of a DSN for messages, never its password.
func hostOf(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			return u.Host
		}
	}
	host, port := "localhost", "5432"
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "host="); ok {
			host = v
		}
		if v, ok := strings.CutPrefix(f, "port="); ok {
			port = v
		}
	}
	return net.JoinHostPort(host, port)
}

// withUTC adds timezone=UTC so that the session runs in UTC (contract §1 rule 3).
func withUTC(dsn string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				return "", uerr.Err // url.Error quotes the whole URL, password included
			}
			return "", err
		}
		q := u.Query()
		q.Set("timezone", "UTC")
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " timezone=UTC", nil
}
