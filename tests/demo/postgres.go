package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/lib/pq"
)

// defaultDatabaseURL is the local server of a developer machine (trust or
// peer-mapped auth for user postgres) and a database the demo owns.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/tasker_demo?sslmode=disable"

// noPostgresAdvice is printed when no server answers: the exact ways to get one.
const noPostgresAdvice = `
The demo needs PostgreSQL. Start one, then run the same command again:

  a local server (Debian/Ubuntu):  sudo apt-get install -y postgresql && sudo service postgresql start
                      (macOS):     brew install postgresql@17 && brew services start postgresql@17
  or Docker, with pgmq:            docker compose -f deployments/docker-compose.yml up -d postgres
                                   export DATABASE_URL='postgres://postgres:postgres@127.0.0.1:55432/tasker?sslmode=disable'

Or point DATABASE_URL at any PostgreSQL 15+ server you can create a database on.`

// dbProblem is a database failure with advice for the person running the demo.
type dbProblem struct {
	msg    string
	advice string
}

func (p *dbProblem) Error() string { return p.msg }

// ensureDatabase checks that the server answers and creates the database of
// rawURL when it is missing (connecting to the "postgres" database for that).
// It returns whether the database was created.
func ensureDatabase(ctx context.Context, rawURL string) (bool, error) {
	err := ping(ctx, rawURL)
	if err == nil {
		return false, nil
	}
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "3D000" {
		return false, classify(err, rawURL)
	}
	u, perr := url.Parse(rawURL)
	if perr != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return false, &dbProblem{msg: pqErr.Message, advice: "create the database, or use a postgres:// DATABASE_URL so the demo can create it"}
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		return false, classify(err, rawURL)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return false, &dbProblem{msg: fmt.Sprintf("create database %s: %v", name, err),
			advice: "create it yourself (createdb " + name + ") or set DATABASE_URL to an existing database"}
	}
	return true, nil
}

func ping(ctx context.Context, rawURL string) error {
	db, err := sql.Open("postgres", rawURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// classify turns a connection error into a one-line message and advice.
func classify(err error, rawURL string) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "28000", "28P01":
			return &dbProblem{msg: "PostgreSQL refused the login: " + pqErr.Message,
				advice: "set DATABASE_URL with a user and password that can create a database, e.g.\n" +
					"  export DATABASE_URL='postgres://USER:PASSWORD@127.0.0.1:5432/tasker_demo?sslmode=disable'"}
		}
		return &dbProblem{msg: pqErr.Message}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) {
		return &dbProblem{msg: fmt.Sprintf("no PostgreSQL answers at %s (%v)", hostOf(rawURL), err), advice: noPostgresAdvice}
	}
	return &dbProblem{msg: err.Error(), advice: noPostgresAdvice}
}

func hostOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "the configured host"
}

// redact hides the password of a postgres:// URL for printing.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
