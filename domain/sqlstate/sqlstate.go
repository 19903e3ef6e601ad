// Package sqlstate classifies database errors by their SQLSTATE code
// without importing a driver: any error in the chain with a SQLState()
// method (lib/pq's *pq.Error, pgx's *pgconn.PgError) is read. It tells the
// queue consumers which failures retrying can never fix, so such a message is
// poison at once instead of being redelivered until the receive limit.
package sqlstate

import "errors"

// Classes of SQLSTATE codes whose errors are permanent for a given input.
const (
	// ClassDataException (22xxx): a value the column cannot hold, such as a
	// priority of 3000000000 for an integer (22003), or malformed text input.
	ClassDataException = "22"
	// ClassIntegrityViolation (23xxx): a NOT NULL, foreign key, unique or
	// CHECK constraint refused the row.
	ClassIntegrityViolation = "23"
)

type coder interface{ SQLState() string }

// Code returns the SQLSTATE of the first error in err's chain that has
// one, and whether there was one.
func Code(err error) (string, bool) {
	var c coder
	if !errors.As(err, &c) {
		return "", false
	}
	code := c.SQLState()
	return code, len(code) == 5
}

// Permanent reports whether err is a database error that the same input
// will always produce again (classes 22 and 23). Connection failures,
// serialization failures, deadlocks, lock timeouts and admin shutdowns are
// not: they are transient and worth a redelivery.
func Permanent(err error) bool {
	code, ok := Code(err)
	if !ok {
		return false
	}
	switch code[:2] {
	case ClassDataException, ClassIntegrityViolation:
		return true
	}
	return false
}
