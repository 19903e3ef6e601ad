package pgmq_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/domain"
)

// Sends and deletes that belong to a business transaction use a Client built on
// the *sqlx.Tx: the completion message is sent and the step message deleted only
// if the outcome commits (contract §9.3, D-g).
func ExampleNew_transaction() {
	ctx := context.Background()
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:5432/tasker_test?sslmode=disable")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	// ... persist the step outcome with tx ...
	q := pgmq.New(tx)
	msg, _ := json.Marshal(domain.SimpleStepMessage{})
	if _, err := q.Send(ctx, domain.QueueStepResults, msg, 0); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := q.Delete(ctx, "fulfillment_queue", 42); err != nil {
		fmt.Println(err)
		return
	}
	if err := tx.Commit(); err != nil {
		fmt.Println(err)
	}
}
