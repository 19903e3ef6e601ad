package postgres_test

import (
	"testing"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/postgres/stepstoretest"
)

// TestStepStoreContract runs the StepStore port's contract suite against the
// store, each subtest on a database of its own.
func TestStepStoreContract(t *testing.T) {
	stepstoretest.Run(t, func(t *testing.T) stepstoretest.Subject {
		db := newDB(t)
		return stepstoretest.Subject{Store: postgres.NewStepStore(db), DB: db}
	})
}
