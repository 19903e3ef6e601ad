package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextProblem says why s cannot be stored as PostgreSQL text, or "" when it
// can: a NUL character (PostgreSQL text cannot hold U+0000) or invalid
// UTF-8. Every string that reaches a text column or a query parameter goes
// through it, so such input is a 400 naming the field instead of a
// database error (issue 13).
func TextProblem(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain NUL (\\u0000) characters"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	return ""
}

// ValidateText returns a *ValidationError naming field when TextProblem(s)
// reports one.
func ValidateText(field, s string) error {
	if p := TextProblem(s); p != "" {
		return &ValidationError{Field: field, Reason: field + " " + p}
	}
	return nil
}

// numberProblem says why a JSON number cannot be kept, or "": its
// magnitude must fit a 64-bit float, the widest number every handler
// language reads. 1e400000 overflows (PostgreSQL's jsonb refuses it too),
// 1e-400 would silently read as 0.
func numberProblem(n string) string {
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) {
		return fmt.Sprintf("number %s is out of range (magnitude must be at most %g)", abbreviate(n), math.MaxFloat64)
	}
	if f == 0 {
		mantissa, _, _ := strings.Cut(strings.ToLower(n), "e")
		if strings.ContainsAny(mantissa, "123456789") {
			return fmt.Sprintf("number %s is too small to represent (magnitude must be 0 or at least %g)", abbreviate(n), math.SmallestNonzeroFloat64)
		}
	}
	return ""
}

// jsonEscapeProblem scans raw JSON text for escapes PostgreSQL's jsonb
// rejects and Go's decoder silently rewrites: \u0000, and a UTF-16
// surrogate escape without its partner (Go turns it into U+FFFD, so the
// token stream cannot see it). raw must be valid JSON, where a backslash
// occurs only inside strings.
func jsonEscapeProblem(raw []byte) string {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return ""
		}
		switch {
		case r == 0:
			return "string contains a NUL (\\u0000) character"
		case r >= 0xDC00 && r <= 0xDFFF:
			return "string contains a lone UTF-16 low surrogate escape"
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := -1, false
			if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				lo, ok = hex4(raw, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return "string contains a lone UTF-16 high surrogate escape"
			}
			i += 6
		}
		i += 5
	}
	return ""
}

func hex4(b []byte, at int) (int, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return int(v), err == nil
}

func abbreviate(s string) string {
	const n = 24
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ValidateStorableJSON checks a valid JSON document of any shape for what
// PostgreSQL's jsonb refuses or what would not survive a round trip: invalid
// UTF-8, \u0000, lone surrogate escapes and numbers beyond a 64-bit float.
// It returns a *ValidationError naming field.
func ValidateStorableJSON(field string, raw []byte) error {
	bad := func(p string) error { return &ValidationError{Field: field, Reason: field + " " + p} }
	if !utf8.Valid(raw) {
		return bad("must be valid UTF-8")
	}
	if p := jsonEscapeProblem(raw); p != "" {
		return bad(p)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return bad("is not valid JSON: " + err.Error())
		}
		if n, ok := tok.(json.Number); ok {
			if p := numberProblem(n.String()); p != "" {
				return bad(p)
			}
		}
	}
}
