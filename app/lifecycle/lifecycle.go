// Package lifecycle names the structured log lines both services write for
// the lifecycle of tasks and steps, and builds their common fields, so that
// one grep (or one log query on task_uuid or trace_id) follows a task across
// the orchestration and the workers.
package lifecycle

import (
	"context"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Log messages of the lifecycle events, one line per event at INFO (a
// failure or a dead letter at WARN).
const (
	TaskCreated      = "task created"
	TaskFinalized    = "task finalized"
	StepEnqueued     = "step enqueued"
	StepRetried      = "step retried"
	StepClaimed      = "step claimed"
	StepCompleted    = "step completed"
	StepFailed       = "step failed"
	StepRescued      = "step rescued"
	StepDeadLettered = "step dead-lettered"
)

// Field names shared by every lifecycle line.
const (
	FieldTaskUUID  = "task_uuid"
	FieldStepUUID  = "step_uuid"
	FieldNamespace = "namespace"
	FieldStep      = "step"
	FieldAttempt   = "attempt"
	FieldTraceID   = "trace_id"
)

// TraceID is the trace_id field of the span in ctx, or a no-op field when
// ctx carries no sampled span (tracing off), so lines stay short then.
func TraceID(ctx context.Context) zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return zap.Skip()
	}
	return zap.String(FieldTraceID, sc.TraceID().String())
}

// Task are the fields of a task line.
func Task(ctx context.Context, taskUUID uuid.UUID, namespace string) []zap.Field {
	return []zap.Field{zap.Stringer(FieldTaskUUID, taskUUID), zap.String(FieldNamespace, namespace), TraceID(ctx)}
}

// Step are the fields of a step line; attempt counts from 1.
func Step(ctx context.Context, taskUUID, stepUUID uuid.UUID, namespace, step string, attempt int) []zap.Field {
	return []zap.Field{zap.Stringer(FieldTaskUUID, taskUUID), zap.Stringer(FieldStepUUID, stepUUID),
		zap.String(FieldNamespace, namespace), zap.String(FieldStep, step), zap.Int(FieldAttempt, attempt), TraceID(ctx)}
}
