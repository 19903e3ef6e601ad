package httpclient

import (
	"context"

	"github.com/google/uuid"
)

// RequestIDHeader carries the correlation id the orchestration echoes and
// logs (contract §7).
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// WithRequestID returns a context whose calls send id as x-request-id, so a
// worker can tie its request to the orchestration's log lines. Without it the
// client generates one UUID v4 per logical call, shared by its retries.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the id set by WithRequestID, if any.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(requestIDKey{}).(string)
	return id, ok && id != ""
}

func requestIDFor(ctx context.Context) string {
	if id, ok := RequestIDFromContext(ctx); ok {
		return id
	}
	return uuid.NewString()
}

// Idempotent creation headers (POST /v1/tasks).
const (
	// IdempotencyKeyHeader makes a task creation idempotent: one key, one task.
	IdempotencyKeyHeader = "Idempotency-Key"
	// IdempotentReplayedHeader is "true" when the orchestration answered with
	// the task an earlier request with the same key created.
	IdempotentReplayedHeader = "Idempotent-Replayed"
)

type idempotencyKeyKey struct{}

// WithIdempotencyKey returns a context whose CreateTask calls send key as
// the Idempotency-Key, for callers that retry a logical create across calls
// (or processes) and want those to make one task too. Without it, each
// CreateTask call uses a fresh key for all its own retries.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey{}, key)
}

// IdempotencyKeyFromContext returns the key set by WithIdempotencyKey, if any.
func IdempotencyKeyFromContext(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(idempotencyKeyKey{}).(string)
	return k, ok && k != ""
}
