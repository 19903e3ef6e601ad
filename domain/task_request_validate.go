package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Validate checks a task request against contract §7.2 and D-k and returns
// the first problem as a *ValidationError whose Reason is the client-facing
// message (e.g. "Task name cannot be empty"); the web adapter maps it to 400.
// It does not require ApplyDefaults first: absent optional fields are valid.
func (r TaskRequest) Validate() error {
	required := []struct{ field, label, value string }{
		{"name", "name", r.Name},
		{"namespace", "namespace", r.Namespace},
		{"version", "version", r.Version},
	}
	for _, f := range required {
		if strings.TrimSpace(f.value) == "" {
			return &ValidationError{Field: f.field, Reason: "Task " + f.label + " cannot be empty"}
		}
	}
	if reason := namespaceProblem(r.Namespace); reason != "" {
		return &ValidationError{Field: "namespace", Reason: "Task namespace " + reason}
	}
	actors := []struct{ field, value string }{
		{"initiator", r.Initiator},
		{"source_system", r.SourceSystem},
		{"reason", r.Reason},
	}
	for _, f := range actors {
		if n := utf8.RuneCountInString(f.value); n > MaxRequestActorLength {
			return &ValidationError{Field: f.field, Reason: fmt.Sprintf("%s must be at most %d characters; got %d", f.field, MaxRequestActorLength, n)}
		}
	}
	if err := r.validateStorable(); err != nil {
		return err
	}
	if !isAbsentJSON(r.Context) {
		if err := ValidateContext(r.Context); err != nil {
			return err
		}
	}
	return nil
}

// validateStorable rejects what PostgreSQL would refuse to store (issue 13):
// NUL or invalid UTF-8 in any string field, and integers beyond the int4
// columns they are written to.
func (r TaskRequest) validateStorable() error {
	texts := []struct{ field, value string }{
		{"name", r.Name}, {"namespace", r.Namespace}, {"version", r.Version},
		{"initiator", r.Initiator}, {"source_system", r.SourceSystem}, {"reason", r.Reason},
	}
	for i, tag := range r.Tags {
		texts = append(texts, struct{ field, value string }{fmt.Sprintf("tags[%d]", i), tag})
	}
	for i, b := range r.BypassSteps {
		texts = append(texts, struct{ field, value string }{fmt.Sprintf("bypass_steps[%d]", i), b})
	}
	for _, f := range texts {
		if err := ValidateText(f.field, f.value); err != nil {
			return err
		}
	}
	ints := []struct {
		field string
		value *int
		min   int
	}{{"priority", r.Priority, math.MinInt32}, {"claim_timeout_seconds", r.ClaimTimeoutSeconds, 0}}
	for _, f := range ints {
		if f.value != nil && (*f.value < f.min || *f.value > math.MaxInt32) {
			return &ValidationError{Field: f.field, Reason: fmt.Sprintf("%s must be between %d and %d; got %d", f.field, f.min, math.MaxInt32, *f.value)}
		}
	}
	return nil
}

// ValidateContext checks a task context against the limits of contract §7.2:
// a JSON object of at most MaxContextBytes, nested at most MaxContextDepth
// containers deep, with at most MaxContextContainerItems keys or items per
// container and strings (keys included) of at most MaxContextStringLength
// characters. The context is only inspected, never rewritten (D-p). It walks
// the document as a token stream so an oversized context is rejected without
// building it in memory.
func ValidateContext(raw json.RawMessage) error {
	bad := func(format string, args ...any) error {
		return &ValidationError{Field: "context", Reason: fmt.Sprintf(format, args...)}
	}
	if len(raw) > MaxContextBytes {
		return bad("Context exceeds maximum size of %d bytes; got %d", MaxContextBytes, len(raw))
	}
	if !utf8.Valid(raw) {
		return bad("Context must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object    bool
		items     int
		expectKey bool
	}
	var stack []*frame
	afterValue := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	first := true
walk:
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad("Context is not valid JSON: %v", err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return bad("Context must be a JSON object")
			}
			first = false
		}
		if n := len(stack); n > 0 {
			top := stack[n-1]
			if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
				stack = stack[:n-1]
				if len(stack) == 0 {
					break walk
				}
				afterValue()
				continue
			}
			if top.object && top.expectKey {
				top.items++
				if top.items > MaxContextContainerItems {
					return bad("Context object exceeds maximum of %d keys", MaxContextContainerItems)
				}
				if k, _ := tok.(string); utf8.RuneCountInString(k) > MaxContextStringLength {
					return bad("Context key exceeds maximum length of %d characters", MaxContextStringLength)
				}
				top.expectKey = false
				continue
			}
			if !top.object {
				top.items++
				if top.items > MaxContextContainerItems {
					return bad("Context array exceeds maximum of %d items", MaxContextContainerItems)
				}
			}
		}
		switch v := tok.(type) {
		case json.Delim: // '{' or '['; closers were handled above
			if len(stack) == MaxContextDepth {
				return bad("Context exceeds maximum nesting depth of %d", MaxContextDepth)
			}
			stack = append(stack, &frame{object: v == '{', expectKey: v == '{'})
		case string:
			if utf8.RuneCountInString(v) > MaxContextStringLength {
				return bad("Context string exceeds maximum length of %d characters", MaxContextStringLength)
			}
			afterValue()
		case json.Number:
			if p := numberProblem(v.String()); p != "" {
				return bad("Context %s", p)
			}
			afterValue()
		default:
			afterValue()
		}
	}
	if first {
		return bad("Context must be a JSON object")
	}
	if len(stack) > 0 {
		return bad("Context is not valid JSON: unexpected end of input")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("Context must be a single JSON object")
	}
	if p := jsonEscapeProblem(raw); p != "" {
		return bad("Context %s", p)
	}
	return nil
}

// CanonicalJSON re-encodes a JSON document compactly with object keys sorted
// and numbers kept as written, so equal documents give equal bytes whatever
// their key order or whitespace. Absent or null input reads as {} (the default
// context).
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	if isAbsentJSON(raw) {
		return []byte(emptyJSONObject), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// IdentityHash is tasker_tasks.identity_hash (contract §10.1): the lower-case
// hex SHA-256 of the named task's uuid string followed by the canonical JSON
// of the context. It is deterministic (key order and whitespace do not
// matter) but deliberately not unique: identical requests make distinct tasks.
func IdentityHash(namedTaskUUID uuid.UUID, context json.RawMessage) (string, error) {
	canon, err := CanonicalJSON(context)
	if err != nil {
		return "", fmt.Errorf("identity hash: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(namedTaskUUID.String()))
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RequestHash is the lower-case hex SHA-256 of the request's canonical JSON
// (its fields as sent, the context in canonical form). Two requests with one
// Idempotency-Key must have the same hash to be a replay; the defaults are
// applied first so that omitting a defaulted field and sending its default are
// the same request.
func RequestHash(r TaskRequest) (string, error) {
	canon, err := CanonicalJSON(r.Context)
	if err != nil {
		return "", fmt.Errorf("request hash: %w", err)
	}
	r.Context = canon
	if len(r.Options) > 0 {
		opts, err := CanonicalJSON(r.Options)
		if err != nil {
			return "", fmt.Errorf("request hash: %w", err)
		}
		r.Options = opts
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("request hash: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
