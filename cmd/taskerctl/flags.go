package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

// errQuiet marks errors whose message was already printed as output.
var errQuiet = errors.New("already reported")

// exitError carries an explicit exit code; usage adds the help hint.
type exitError struct {
	code  int
	err   error
	usage bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...), usage: true}
}

// inputErrorf reports bad input (a file, JSON, a UUID): exit 2, nothing sent.
func inputErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the exit code documented in the package comment.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ae *httpclient.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 &&
		ae.Status != http.StatusRequestTimeout && ae.Status != http.StatusTooManyRequests {
		return exitUsage
	}
	return exitFailed
}

// parseTaskUUID reads a task UUID argument.
func parseTaskUUID(cmd, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, inputErrorf("%s: %q is not a task UUID: %v", cmd, s, err)
	}
	return id, nil
}

// readContext turns --context into a JSON object: inline JSON, or @FILE
// (@- for stdin). Anything but an object is rejected before sending.
func readContext(value string, stdin io.Reader) (json.RawMessage, error) {
	return readJSONObjectArg("--context", value, stdin)
}

// readJSONObjectArg reads a JSON-object flag: inline JSON, or @FILE (@- for
// stdin); empty is {}.
func readJSONObjectArg(flag, value string, stdin io.Reader) (json.RawMessage, error) {
	if value == "" {
		return json.RawMessage(`{}`), nil
	}
	data, source := []byte(value), flag
	if strings.HasPrefix(value, "@") {
		path := value[1:]
		var err error
		if path == "-" {
			data, err = io.ReadAll(stdin)
			source = flag + " @- (stdin)"
		} else {
			data, err = os.ReadFile(path)
			source = flag + " file " + path
		}
		if err != nil {
			return nil, inputErrorf("read %s: %v", source, err)
		}
	}
	data = bytes.TrimSpace(data)
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, inputErrorf("%s is not valid JSON: %v", source, describeJSONError(data, err))
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, inputErrorf("%s must be a JSON object such as {\"even_number\": 2}, got %s", source, jsonKind(v))
	}
	return json.RawMessage(data), nil
}

// describeJSONError adds the byte offset to syntax errors.
func describeJSONError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%v (at byte %d of %d)", se, se.Offset, len(data))
	}
	return err
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", v)
	}
}
