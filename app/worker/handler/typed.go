package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// DependencyTag is the struct tag that fills a field of a Typed handler's
// input from a dependency's result instead of the task context:
//
//	type Input struct {
//		EvenNumber int    `json:"even_number"`           // task context
//		Squared    int    `dependency:"square_it"`        // result of step square_it
//		Note       string `dependency:"annotate,optional"` // zero when absent
//	}
//
// A required dependency that has no result is a permanent failure: the
// template's dependencies and the handler disagree, and retrying will not
// change that.
const DependencyTag = "dependency"

// TypedFunc is the function a Typed handler wraps: In is decoded from the
// task context (encoding/json rules, unknown keys ignored) and from the
// dependency results named by DependencyTag fields; Out is the step's
// result.
type TypedFunc[In, Out any] func(ctx context.Context, sc *StepContext, in In) (Out, error)

// Typed turns fn into a Handler: it decodes In, calls fn and stores Out as
// the step's result. A task context or dependency result that does not fit
// In is a permanent failure with error_type "validation" naming the field,
// because running the step again with the same input cannot succeed. Errors
// returned by fn keep their meaning (Permanent/Retryable, or retryable by
// default).
func Typed[In, Out any](fn TypedFunc[In, Out]) Handler {
	plan := dependencyFields(reflect.TypeFor[In]())
	return HandlerFunc(func(ctx context.Context, sc *StepContext) (Success, error) {
		var in In
		if err := decodeInput(sc, &in, plan); err != nil {
			return Success{}, err
		}
		out, err := fn(ctx, sc, in)
		if err != nil {
			return Success{}, err
		}
		return Succeed(out), nil
	})
}

// depField is one DependencyTag field of an input struct.
type depField struct {
	index    []int
	step     string
	optional bool
}

// dependencyFields lists the DependencyTag fields of t (a struct or a
// pointer to one); other types have none.
func dependencyFields(t reflect.Type) []depField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []depField
	for _, f := range reflect.VisibleFields(t) {
		tag, ok := f.Tag.Lookup(DependencyTag)
		if !ok || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		out = append(out, depField{index: f.Index, step: name, optional: opts == "optional"})
	}
	return out
}

func decodeInput[In any](sc *StepContext, in *In, plan []depField) error {
	raw := bytes.TrimSpace(sc.task.Context)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, in); err != nil {
			return Permanent(ErrorTypeValidation, "task context does not fit %T: %s", *in, describeDecodeError(err)).WithCause(err)
		}
	}
	if len(plan) == 0 {
		return nil
	}
	v := reflect.ValueOf(in).Elem()
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	for _, f := range plan {
		dep, ok := sc.deps[f.step]
		if !ok {
			if f.optional {
				continue
			}
			return Permanent(ErrorTypeValidation, "no result of dependency %q for %T (is it in the step's dependencies?)", f.step, *in)
		}
		field := v.FieldByIndex(f.index)
		if err := json.Unmarshal(dep, field.Addr().Interface()); err != nil {
			return Permanent(ErrorTypeValidation, "result of dependency %q does not fit field %s: %s", f.step,
				v.Type().FieldByIndex(f.index).Name, describeDecodeError(err)).WithCause(err)
		}
	}
	return nil
}

// describeDecodeError names the JSON field of a type mismatch.
func describeDecodeError(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return fmt.Sprintf("field %q: cannot use a JSON %s as %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}
