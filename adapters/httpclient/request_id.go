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
