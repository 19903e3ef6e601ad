// Package heartbeattest is the contract-test suite of the HeartbeatProbe port
// (ports.HeartbeatProbe). Every implementation runs it, the pgmq Client and
// the in-memory queue of the consumers' tests alike, so a rescue decision
// tested on the fake is the one the worker takes on pgmq:
//
//	func TestHeartbeatContract(t *testing.T) {
//		db := testdb.New(t)
//		heartbeattest.Run(t, func(t *testing.T) heartbeattest.Subject { return pgmq.New(db) })
//	}
//
// The probe is asked about a queue the Queue port fills, so a Subject is
// both: the suite makes messages visible and invisible through the Queue
// methods and asks OtherHolder what it sees. It pins what the port
// documents: only another message (not msgID), for the same step_uuid, in
// the same queue, invisible now, is a holder; a message whose visibility
// timeout ran out, a deleted or archived one, or one naming no step is not.
//
// Subtests run in parallel, each on its own queue, so the factory may return
// the same implementation every time. Waiting for a visibility timeout is
// polled with require.Eventually, never slept for a fixed time.
package heartbeattest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/queuetest"
	"github.com/tasker-systems/tasker-go/ports"
)

// Subject is a queue that can also be probed for holders.
type Subject interface {
	ports.Queue
	ports.HeartbeatProbe
}

// Factory returns the Subject under test for one subtest.
type Factory func(t *testing.T) Subject

// Run runs the whole suite against the implementation f returns.
func Run(t *testing.T, f Factory) {
	t.Run("InvisibleDuplicateIsAHolder", func(t *testing.T) { testInvisibleDuplicate(t, f) })
	t.Run("OwnMessageIsNotAHolder", func(t *testing.T) { testOwnMessage(t, f) })
	t.Run("VisibleDuplicateIsNotAHolder", func(t *testing.T) { testVisibleDuplicate(t, f) })
	t.Run("OtherStepsAreNotHolders", func(t *testing.T) { testOtherSteps(t, f) })
	t.Run("ExpiredVisibilityIsNotAHolder", func(t *testing.T) { testExpired(t, f) })
	t.Run("DelayedDuplicateIsAHolder", func(t *testing.T) { testDelayed(t, f) })
	t.Run("DeletedOrArchivedIsNotAHolder", func(t *testing.T) { testRemoved(t, f) })
	t.Run("OtherQueuesAreNotLookedAt", func(t *testing.T) { testOtherQueue(t, f) })
	t.Run("BadQueueNames", func(t *testing.T) { testBadQueues(t, f) })
}

// setup creates a fresh queue and returns it with the Subject under test.
func setup(t *testing.T, f Factory) (context.Context, Subject, string) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s := f(t)
	name := queuetest.NewQueueName()
	require.NoError(t, s.CreateQueue(ctx, name))
	return ctx, s, name
}

// stepMessage is a step message body as the enqueuer sends it.
func stepMessage(step string) json.RawMessage {
	return json.RawMessage(`{"task_uuid":"` + uuid.NewString() + `","step_uuid":"` + step + `","namespace":"ht"}`)
}

func send(t *testing.T, ctx context.Context, s Subject, queue string, body json.RawMessage) int64 {
	t.Helper()
	id, err := s.Send(ctx, queue, body, 0)
	require.NoError(t, err)
	return id
}

// hide reads the next visible message for vtSeconds, as a worker taking it does.
func hide(t *testing.T, ctx context.Context, s Subject, queue string, want int64, vtSeconds int) {
	t.Helper()
	msgs, err := s.Read(ctx, queue, vtSeconds, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, want, msgs[0].MsgID)
}

func holder(t *testing.T, ctx context.Context, s Subject, queue string, msgID int64, step string) bool {
	t.Helper()
	held, err := s.OtherHolder(ctx, queue, msgID, step)
	require.NoError(t, err)
	return held
}

func testInvisibleDuplicate(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	a := send(t, ctx, s, q, stepMessage(step))
	b := send(t, ctx, s, q, stepMessage(step))
	hide(t, ctx, s, q, a, 30)
	require.True(t, holder(t, ctx, s, q, b, step), "a is invisible: a live worker holds the step through it")
}

func testOwnMessage(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	a := send(t, ctx, s, q, stepMessage(step))
	hide(t, ctx, s, q, a, 30)
	require.False(t, holder(t, ctx, s, q, a, step), "the asking message itself is no other holder")
}

func testVisibleDuplicate(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	a := send(t, ctx, s, q, stepMessage(step))
	send(t, ctx, s, q, stepMessage(step))
	hide(t, ctx, s, q, a, 30)
	require.False(t, holder(t, ctx, s, q, a, step), "b is visible: nobody holds the step through it")
}

func testOtherSteps(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	other := send(t, ctx, s, q, stepMessage(uuid.NewString()))
	noStep := send(t, ctx, s, q, json.RawMessage(`{"task_uuid":"`+uuid.NewString()+`"}`))
	nullStep := send(t, ctx, s, q, json.RawMessage(`{"step_uuid":null}`))
	mine := send(t, ctx, s, q, stepMessage(step))
	for _, id := range []int64{other, noStep, nullStep} {
		hide(t, ctx, s, q, id, 30)
	}
	require.False(t, holder(t, ctx, s, q, mine, step), "invisible messages of another step, or of none, hold nothing")
	require.False(t, holder(t, ctx, s, q, mine, uuid.NewString()), "a step with no message has no holder")
}

func testExpired(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	a := send(t, ctx, s, q, stepMessage(step))
	b := send(t, ctx, s, q, stepMessage(step))
	hide(t, ctx, s, q, a, 1)
	require.True(t, holder(t, ctx, s, q, b, step))
	require.Eventually(t, func() bool { return !holder(t, ctx, s, q, b, step) }, 10*time.Second, 50*time.Millisecond,
		"a's visibility timeout ran out: its holder stopped extending it")

	ok, err := s.SetVT(ctx, q, a, 60)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, holder(t, ctx, s, q, b, step), "an extended message is held again")
	ok, err = s.SetVT(ctx, q, a, 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Eventually(t, func() bool { return !holder(t, ctx, s, q, b, step) }, 10*time.Second, 10*time.Millisecond,
		"set_vt 0 makes it visible at once")
}

func testDelayed(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	a := send(t, ctx, s, q, stepMessage(step))
	_, err := s.Send(ctx, q, stepMessage(step), time.Hour)
	require.NoError(t, err)
	require.True(t, holder(t, ctx, s, q, a, step), "a delayed message is invisible, as the port defines a holder")
}

func testRemoved(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	step := uuid.NewString()
	deleted := send(t, ctx, s, q, stepMessage(step))
	archived := send(t, ctx, s, q, stepMessage(step))
	mine := send(t, ctx, s, q, stepMessage(step))
	hide(t, ctx, s, q, deleted, 60)
	hide(t, ctx, s, q, archived, 60)
	require.True(t, holder(t, ctx, s, q, mine, step))

	ok, err := s.Delete(ctx, q, deleted)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, holder(t, ctx, s, q, mine, step), "the archived-to-be message still holds")
	ok, err = s.Archive(ctx, q, archived)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, holder(t, ctx, s, q, mine, step), "deleted and archived messages hold nothing")
}

func testOtherQueue(t *testing.T, f Factory) {
	ctx, s, q := setup(t, f)
	other := queuetest.NewQueueName()
	require.NoError(t, s.CreateQueue(ctx, other))
	step := uuid.NewString()
	there := send(t, ctx, s, other, stepMessage(step))
	hide(t, ctx, s, other, there, 60)
	mine := send(t, ctx, s, q, stepMessage(step))
	require.False(t, holder(t, ctx, s, q, mine, step), "a holder in another queue is not looked at")
	require.True(t, holder(t, ctx, s, other, mine+1000, step), "but is seen when that queue is asked")
}

func testBadQueues(t *testing.T, f Factory) {
	t.Parallel()
	ctx := context.Background()
	s := f(t)
	step := uuid.NewString()
	for _, bad := range []string{"", "Bad Name", "x; drop table pgmq.meta"} {
		_, err := s.OtherHolder(ctx, bad, 1, step)
		require.Error(t, err, "probe %q", bad)
	}
	_, err := s.OtherHolder(ctx, queuetest.NewQueueName(), 1, step)
	require.ErrorIs(t, err, pgmq.ErrQueueNotFound, "a queue never created")
}
