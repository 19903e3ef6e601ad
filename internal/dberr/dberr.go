// Package dberr classifies the errors of database calls into what an API
// answers with: the request ran out of time (408), the database cannot be
// reached or refuses work (503), or the input was rejected by PostgreSQL as
// data it cannot store (400). It is the one place that knows SQLSTATE
// classes and lib/pq's error types, so the HTTP adapters map errors without
// matching driver details themselves.
package dberr

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
)

// Kind is the class of a database error as the API sees it.
type Kind int

// Kinds, from the most to the least specific.
const (
	// Other is any error that is none of the below: a bug or an unexpected
	// state, answered with 500.
	Other Kind = iota
	// Timeout is a call that ran past its deadline: the request context's
	// deadline, or PostgreSQL cancelling the statement (SQLSTATE 57014,
	// which lib/pq returns when it cancels a query for an expired context,
	// and statement_timeout raises) or giving up on a lock (55P03).
	Timeout
	// Unavailable is a database that cannot be reached or refuses work:
	// connection refused or reset, a broken connection, SQLSTATE class 08
	// (connection exception), 57P01..57P03 (shutdown, crash, cannot
	// connect now), class 53 (insufficient resources, e.g. too many
	// clients) and any error of severity FATAL, which ends the session
	// (e.g. 55000, a database not accepting connections). Retrying later
	// can succeed, so the API answers 503.
	Unavailable
	// InvalidInput is data PostgreSQL refused to store (SQLSTATE class 22,
	// data exception: NUL in text, an out-of-range number, invalid
	// Unicode). Validation should have caught it first; this is the safety
	// net that keeps such input a 400 instead of a 500.
	InvalidInput
)

// Classify returns the Kind of err (Other for nil).
func Classify(err error) Kind {
	if err == nil {
		return Other
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		if k := classifyState(string(pqErr.Code)); k != Other {
			return k
		}
		// A FATAL (or PANIC) error ends the session: the server refused or
		// dropped the connection, whatever the SQLSTATE. The one seen in
		// practice is 55000 "database ... is not currently accepting
		// connections" (ALTER DATABASE ... ALLOW_CONNECTIONS false), which
		// answered 500 on every data route (issue 13 defect 3).
		if pqErr.Fatal() || pqErr.Severity == "PANIC" {
			return Unavailable
		}
		return Other
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pq.ErrSSLNotSupported):
		return Unavailable
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			return Timeout
		}
		return Unavailable
	}
	// lib/pq reports a refused or dropped connection in some paths only as
	// text (e.g. "driver: bad connection" re-wrapped with %v upstream).
	msg := err.Error()
	for _, s := range []string{"connection refused", "bad connection", "broken pipe", "connection reset"} {
		if strings.Contains(msg, s) {
			return Unavailable
		}
	}
	return Other
}

func classifyState(code string) Kind {
	switch {
	case code == "57014", code == "55P03":
		return Timeout
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
		code == "57P01", code == "57P02", code == "57P03":
		return Unavailable
	case strings.HasPrefix(code, "22"):
		return InvalidInput
	}
	return Other
}

// IsTimeout reports whether err is a Timeout.
func IsTimeout(err error) bool { return Classify(err) == Timeout }

// IsUnavailable reports whether err is Unavailable.
func IsUnavailable(err error) bool { return Classify(err) == Unavailable }

// IsInvalidInput reports whether err is InvalidInput.
func IsInvalidInput(err error) bool { return Classify(err) == InvalidInput }
