// Package examples holds the Go step handlers of the example templates in
// configs/tasks/examples (namespace "examples"): every step squares its
// input and joins multiply their parents, so a task's final result is a
// known power of the input (diamond N^8, mixed DAG N^24, tree N^32, linear
// N^16). Arithmetic uses math/big so large inputs cannot overflow; results
// are emitted as plain JSON numbers.
package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
)

// Callables of the example handlers, as named by the example templates.
const (
	SquareCallable   = "examples.square"
	MultiplyCallable = "examples.multiply"
)

// EvenNumberKey is the task context field the root steps read.
const EvenNumberKey = "even_number"

// Register adds the example handlers to r.
func Register(r *handler.Registry) error {
	if err := r.Register(SquareCallable, handler.HandlerFunc(Square)); err != nil {
		return err
	}
	return r.Register(MultiplyCallable, handler.HandlerFunc(Multiply))
}

// Square squares context.even_number for a root step (no dependencies in
// its step definition) and otherwise its single direct parent's result. An
// odd or non-integer even_number fails permanently with error_type
// "validation": retrying cannot change the task's input.
func Square(_ context.Context, sc *handler.StepContext) (handler.Success, error) {
	deps := sc.Definition().Dependencies
	var n *big.Int
	switch len(deps) {
	case 0:
		raw, ok := sc.ContextRaw(EvenNumberKey)
		if !ok {
			return handler.Success{}, handler.Permanent(handler.ErrorTypeValidation,
				"task context has no %q", EvenNumberKey).WithContext("field", EvenNumberKey)
		}
		v, err := parseInteger(raw)
		if err != nil {
			return handler.Success{}, handler.Permanent(handler.ErrorTypeValidation,
				"%s: %v", EvenNumberKey, err).WithContext("field", EvenNumberKey)
		}
		if v.Bit(0) == 1 {
			return handler.Success{}, handler.Permanent(handler.ErrorTypeValidation,
				"%s must be even, got %s", EvenNumberKey, v).
				WithContext("field", EvenNumberKey).WithContext("value", v.String())
		}
		n = v
	case 1:
		v, err := parentValue(sc, deps[0])
		if err != nil {
			return handler.Success{}, err
		}
		n = v
	default:
		return handler.Success{}, handler.Permanent("configuration_error",
			"%s squares exactly one parent, step %s has %d", SquareCallable, sc.StepName(), len(deps))
	}
	return number(new(big.Int).Mul(n, n)), nil
}

// Multiply returns the product of the results of all direct parents (the
// step definition's dependencies, not every transitive ancestor).
func Multiply(_ context.Context, sc *handler.StepContext) (handler.Success, error) {
	deps := sc.Definition().Dependencies
	if len(deps) == 0 {
		return handler.Success{}, handler.Permanent("configuration_error",
			"%s needs at least one parent, step %s has none", MultiplyCallable, sc.StepName())
	}
	product := big.NewInt(1)
	for _, d := range deps {
		v, err := parentValue(sc, d)
		if err != nil {
			return handler.Success{}, err
		}
		product.Mul(product, v)
	}
	return number(product), nil
}

// parentValue reads a parent's integer result. A missing parent result is
// retryable (the step ran too early, which orchestration should prevent);
// a non-integer one is permanent.
func parentValue(sc *handler.StepContext, step string) (*big.Int, error) {
	raw, ok := sc.DependencyRaw(step)
	if !ok {
		return nil, handler.Retryable("missing_dependency", "no result for parent step %s", step)
	}
	v, err := parseInteger(raw)
	if err != nil {
		return nil, handler.Permanent(handler.ErrorTypeValidation, "result of %s: %v", step, err)
	}
	return v, nil
}

// parseInteger accepts a JSON integer of any size (also written with a
// zero fraction or exponent, e.g. 4.0 or 1e3) and rejects anything else.
func parseInteger(raw json.RawMessage) (*big.Int, error) {
	var num json.Number
	// json.Number also accepts a quoted number; a string is not a number here.
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '"' {
		return nil, fmt.Errorf("not a number: %s", truncate(raw))
	}
	if err := json.Unmarshal(raw, &num); err != nil {
		return nil, fmt.Errorf("not a number: %s", truncate(raw))
	}
	if v, ok := new(big.Int).SetString(num.String(), 10); ok {
		return v, nil
	}
	f, ok := new(big.Float).SetPrec(4096).SetString(num.String())
	if !ok || !f.IsInt() {
		return nil, fmt.Errorf("not an integer: %s", num)
	}
	v, _ := f.Int(nil)
	return v, nil
}

func number(v *big.Int) handler.Success {
	return handler.Succeed(json.RawMessage(v.String()))
}

func truncate(raw json.RawMessage) string {
	const max = 64
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}
