package domain_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

func TestNewPagination(t *testing.T) {
	t.Parallel()
	require.Equal(t, domain.Pagination{Page: 1, PerPage: 25, TotalCount: 0, TotalPages: 0}, domain.NewPagination(1, 25, 0))
	require.Equal(t, domain.Pagination{Page: 2, PerPage: 25, TotalCount: 51, TotalPages: 3, HasNext: true, HasPrevious: true},
		domain.NewPagination(2, 25, 51))
	require.Equal(t, domain.Pagination{Page: 3, PerPage: 25, TotalCount: 51, TotalPages: 3, HasPrevious: true},
		domain.NewPagination(3, 25, 51))
}

// TestDLQEntryBody: ids and strings the entry does not know are null on the
// wire, and the body round-trips through the same type the client decodes.
func TestDLQEntryBody(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)
	bare := domain.DLQEntry{EntryUUID: uuid.New(), Namespace: "ns", Reason: domain.DLQTaskTimeout, Status: domain.DLQOpen,
		Detail: "no transition", CreatedAt: at, UpdatedAt: at}
	raw, err := json.Marshal(bare.Body())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, k := range []string{"task_uuid", "step_uuid", "queue_name", "message", "resolution_note"} {
		require.Contains(t, m, k)
		require.Nil(t, m[k], k)
	}

	full := bare
	full.TaskUUID, full.StepUUID = uuid.New(), uuid.New()
	full.QueueName, full.Message, full.ResolutionNote = "ns_queue", []byte(`{"step_uuid":"x"}`), "fixed"
	raw, err = json.Marshal(full.Body())
	require.NoError(t, err)
	var back domain.DLQEntryBody
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, full.TaskUUID, *back.TaskUUID)
	require.Equal(t, full.StepUUID, *back.StepUUID)
	require.Equal(t, "ns_queue", *back.QueueName)
	require.Equal(t, "fixed", *back.ResolutionNote)
	require.JSONEq(t, `{"step_uuid":"x"}`, string(back.Message))
	require.Equal(t, string(domain.DLQTaskTimeout), back.Reason)
}
