// Package inputschema checks a task's context against its template's
// input_schema (JSON Schema, contract §6) when the task is created, so a bad
// context is a 400 naming the failing value instead of a step failing
// later in a handler. It uses github.com/santhosh-tekuri/jsonschema/v6
// (drafts 4 to 2020-12; a schema without $schema is read as 2020-12).
package inputschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/tasker-systems/tasker-go/domain"
)

// MaxCachedSchemas bounds the compiled-schema cache; templates are few, so
// the bound only matters against a pathological number of versions.
const MaxCachedSchemas = 1024

// resourceURL names the schema inside the compiler; messages never show it.
const resourceURL = "tasker:input_schema.json"

var printer = message.NewPrinter(language.English)

// Validator compiles input schemas once and validates contexts against
// them. The zero value is not usable; use New. It is safe for concurrent
// use.
type Validator struct {
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
}

// New returns a Validator with an empty cache.
func New() *Validator { return &Validator{cache: map[string]*jsonschema.Schema{}} }

// Validate checks taskContext (a JSON object) against schema (the template's
// input_schema as decoded from YAML/JSON; nil means no schema). The error
// is a *domain.ValidationError whose Field is "context" plus the JSON
// pointer of the first failing value (e.g. "context/even_number") and whose
// Reason names the pointer and the rule broken. A schema that does not
// compile is also a *domain.ValidationError (field "input_schema").
func (v *Validator) Validate(schema any, taskContext json.RawMessage) error {
	if schema == nil {
		return nil
	}
	raw, err := json.Marshal(schema)
	if err != nil {
		return &domain.ValidationError{Field: "input_schema", Reason: fmt.Sprintf("template input_schema is not JSON: %v", err)}
	}
	sch, err := v.compile(raw)
	if err != nil {
		return &domain.ValidationError{Field: "input_schema", Reason: fmt.Sprintf("template input_schema is not a valid JSON Schema: %v", err)}
	}
	doc := taskContext
	if len(bytes.TrimSpace(doc)) == 0 {
		doc = json.RawMessage(`{}`)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return &domain.ValidationError{Field: "context", Reason: fmt.Sprintf("context is not valid JSON: %v", err)}
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &domain.ValidationError{Field: "context", Reason: err.Error()}
	}
	return describe(ve)
}

func (v *Validator) compile(raw []byte) (*jsonschema.Schema, error) {
	key := string(raw)
	v.mu.Lock()
	sch, ok := v.cache[key]
	v.mu.Unlock()
	if ok {
		return sch, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(resourceURL, doc); err != nil {
		return nil, err
	}
	sch, err = c.Compile(resourceURL)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.cache) >= MaxCachedSchemas {
		clear(v.cache)
	}
	v.cache[key] = sch
	v.mu.Unlock()
	return sch, nil
}

// failure is one leaf of a validation error tree.
type failure struct {
	pointer string
	reason  string
}

// describe turns the error tree into one ValidationError: the first leaf
// by JSON pointer, plus how many more there are.
func describe(ve *jsonschema.ValidationError) error {
	var leaves []failure
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, failure{pointer: pointer(e.InstanceLocation), reason: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(leaves, func(i, j int) bool { return leaves[i].pointer < leaves[j].pointer })
	first := leaves[0]
	reason := fmt.Sprintf("context does not match the template's input_schema at %q: %s", first.pointer, first.reason)
	if n := len(leaves) - 1; n > 0 {
		reason += fmt.Sprintf(" (and %d more)", n)
	}
	return &domain.ValidationError{Field: "context" + first.pointer, Reason: reason}
}

// pointer renders an instance location as a JSON Pointer (RFC 6901): ""
// for the whole context, "/even_number", "/items/0".
func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(tok))
	}
	return b.String()
}
