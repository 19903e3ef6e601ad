package pgmq_test

import (
	"testing"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/heartbeattest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestHeartbeatContract runs the HeartbeatProbe port's contract suite
// against the Client on a database of its own (each subtest on its own queue).
func TestHeartbeatContract(t *testing.T) {
	db := testdb.New(t)
	heartbeattest.Run(t, func(*testing.T) heartbeattest.Subject { return pgmq.New(db) })
}
