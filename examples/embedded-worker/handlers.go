package main

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
)

// Order is the parent task's context (checked by its input_schema at
// creation, so the handlers can trust its shape).
type Order struct {
	OrderID int64    `json:"order_id"`
	Items   []string `json:"items"`
}

// Validated is validate_order's result.
type Validated struct {
	OrderID    int64 `json:"order_id"`
	ItemCount  int   `json:"item_count"`
	TotalCents int64 `json:"total_cents"`
}

// validateOrder decodes the task context into Order.
func validateOrder(_ context.Context, sc *handler.StepContext, in Order) (Validated, error) {
	sc.Logger().Info("validating order", zap.Int64("order_id", in.OrderID), zap.Int("items", len(in.Items)))
	return Validated{OrderID: in.OrderID, ItemCount: len(in.Items), TotalCents: int64(len(in.Items)) * 250}, nil
}

// ShippingInput takes the validated order from the dependency result.
type ShippingInput struct {
	Order Validated `dependency:"validate_order"`
}

// Shipping is start_shipping's result: the child task it created.
type Shipping struct {
	ChildTaskUUID string `json:"child_task_uuid"`
}

// startShipping creates the child task ship_order through the worker's
// orchestration client.
func startShipping(ctx context.Context, sc *handler.StepContext, in ShippingInput) (Shipping, error) {
	childCtx, err := json.Marshal(map[string]any{"order_id": in.Order.OrderID, "item_count": in.Order.ItemCount,
		"parent_task_uuid": sc.TaskUUID().String()})
	if err != nil {
		return Shipping{}, handler.Permanent("encode", "child context: %v", err)
	}
	created, err := sc.CreateTask(ctx, domain.TaskRequest{Namespace: "embedded", Name: "ship_order", Version: "1.0",
		Context: childCtx, Initiator: "embedded-worker", SourceSystem: "embedded-worker",
		Reason: fmt.Sprintf("child of task %s step %s", sc.TaskUUID(), sc.StepName())})
	if err != nil {
		return Shipping{}, err // retryable by default: the orchestration may be restarting
	}
	sc.Logger().Info("created child task", zap.Stringer("child_task_uuid", created.TaskUUID))
	return Shipping{ChildTaskUUID: created.TaskUUID.String()}, nil
}

// ShipInput is the child task's context.
type ShipInput struct {
	OrderID        int64  `json:"order_id"`
	ItemCount      int    `json:"item_count"`
	ParentTaskUUID string `json:"parent_task_uuid"`
}

// Shipped is ship's result.
type Shipped struct {
	OrderID int64  `json:"order_id"`
	Parcel  string `json:"parcel"`
}

func ship(_ context.Context, sc *handler.StepContext, in ShipInput) (Shipped, error) {
	sc.Logger().Info("shipping", zap.Int64("order_id", in.OrderID), zap.String("parent", in.ParentTaskUUID))
	return Shipped{OrderID: in.OrderID, Parcel: fmt.Sprintf("PCL-%d-%d", in.OrderID, in.ItemCount)}, nil
}
