package handler_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
)

// chargeCard is a step handler: it reads the task context and a dependency
// result, and fails permanently on bad input but retryably on a rate limit.
func chargeCard(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
	var amount int64
	if err := sc.ContextValue("amount_cents", &amount); err != nil {
		return handler.Success{}, handler.Permanent(handler.ErrorTypeValidation, "amount_cents: %v", err).
			WithCode("BAD_AMOUNT")
	}
	var customer struct {
		ID string `json:"id"`
	}
	if err := sc.DependencyResult("load_customer", &customer); err != nil {
		return handler.Success{}, err // a plain error is a retryable "handler_error"
	}
	if amount > 100_000 {
		return handler.Success{}, handler.Retryable("rate_limited", "card processor busy").RetryAfter(30)
	}
	return handler.Succeed(map[string]any{"charged": amount, "customer": customer.ID}).
		WithMetadata("processor", "demo"), nil
}

func Example() {
	// Register under the callable named by the template's handler.callable.
	// Worker binaries do this in an init function with handler.MustRegister.
	reg := handler.NewRegistry()
	if err := reg.Register("Billing::ChargeCard", handler.HandlerFunc(chargeCard)); err != nil {
		panic(err)
	}

	// The worker builds the StepContext from the claimed step; here by hand.
	sc, err := handler.NewStepContext(domain.StepExecutionEvent{
		Task:              domain.TaskInfo{Context: json.RawMessage(`{"amount_cents": 1250}`)},
		DependencyResults: map[string]json.RawMessage{"load_customer": json.RawMessage(`{"id":"c-42"}`)},
	})
	if err != nil {
		panic(err)
	}
	h, _ := reg.Lookup("Billing::ChargeCard")
	out, err := h.Handle(context.Background(), sc)
	fmt.Println(out.Result, out.Metadata, err)
	// Output: map[charged:1250 customer:c-42] map[processor:demo] <nil>
}

// ChargeInput is decoded by handler.Typed: amount_cents from the task
// context, Customer from the result of step load_customer.
type ChargeInput struct {
	AmountCents int64 `json:"amount_cents"`
	Customer    struct {
		ID string `json:"id"`
	} `dependency:"load_customer"`
}

// ChargeResult becomes the step's result.
type ChargeResult struct {
	Charged  int64  `json:"charged"`
	Customer string `json:"customer"`
}

// A typed handler: no manual decoding; input that does not fit the struct is
// a permanent "validation" failure naming the field.
func ExampleTyped() {
	charge := handler.Typed(func(ctx context.Context, sc *handler.StepContext, in ChargeInput) (ChargeResult, error) {
		sc.Logger().Info("charging") // the worker's logger with this step's ids
		return ChargeResult{Charged: in.AmountCents, Customer: in.Customer.ID}, nil
	})
	reg := handler.NewRegistry()
	if err := reg.Register("Billing::ChargeCard", charge); err != nil {
		panic(err)
	}

	run := func(taskContext string) {
		sc, err := handler.NewStepContext(domain.StepExecutionEvent{
			Task:              domain.TaskInfo{Context: json.RawMessage(taskContext)},
			DependencyResults: map[string]json.RawMessage{"load_customer": json.RawMessage(`{"id":"c-42"}`)},
		})
		if err != nil {
			panic(err)
		}
		out, err := charge.Handle(context.Background(), sc)
		if err != nil {
			fmt.Println("error:", err, "retryable:", handler.AsError(err).Retryable)
			return
		}
		fmt.Printf("%+v\n", out.Result)
	}
	run(`{"amount_cents": 1250}`)
	run(`{"amount_cents": "lots"}`)
	// Output:
	// {Charged:1250 Customer:c-42}
	// error: validation: task context does not fit handler_test.ChargeInput: field "amount_cents": cannot use a JSON string as int64 retryable: false
}
