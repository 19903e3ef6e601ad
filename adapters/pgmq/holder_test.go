package pgmq_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// OtherHolder sees another invisible message for the same step, and only that.
func TestOtherHolder(t *testing.T) {
	t.Parallel()
	ctx, _, c, q := setup(t)
	step := uuid.NewString()
	body := json.RawMessage(`{"task_uuid":"` + uuid.NewString() + `","step_uuid":"` + step + `"}`)
	a, err := c.Send(ctx, q, body, 0)
	require.NoError(t, err)
	b, err := c.Send(ctx, q, body, 0)
	require.NoError(t, err)
	_, err = c.Send(ctx, q, json.RawMessage(`{"step_uuid":"`+uuid.NewString()+`"}`), 0)
	require.NoError(t, err)

	got, err := c.Read(ctx, q, 30, 1)
	require.NoError(t, err)
	require.Equal(t, a, got[0].MsgID)
	held, err := c.OtherHolder(ctx, q, a, step)
	require.NoError(t, err)
	require.False(t, held, "b is visible: nobody else holds the step")
	held, err = c.OtherHolder(ctx, q, b, step)
	require.NoError(t, err)
	require.True(t, held, "a is invisible: someone holds the step through it")
	_, err = c.SetVT(ctx, q, a, 0)
	require.NoError(t, err)
	time.Sleep(10 * time.Millisecond)
	held, err = c.OtherHolder(ctx, q, b, step)
	require.NoError(t, err)
	require.False(t, held, "a's visibility expired")
	_, err = c.OtherHolder(ctx, "Bad Name", a, step)
	require.Error(t, err)
}
