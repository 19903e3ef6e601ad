package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
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

// newFlagSet returns a flag set that also accepts the global flags, so that
// `taskerctl task get UUID --output json` works like `taskerctl --output json task get UUID`.
func (c *cli) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by run
	url := c.getenv(envBaseURL)
	if url == "" {
		url = defaultURL
	}
	if c.global.url == "" {
		c.global.url = url
		c.global.token = c.getenv(envAuthToken)
		c.global.output = "human"
	}
	fs.StringVar(&c.global.url, "url", c.global.url, "orchestration base URL")
	fs.StringVar(&c.global.token, "token", c.global.token, "bearer token")
	fs.StringVar(&c.global.output, "output", c.global.output, "human or json")
	return fs
}

// parseInterleaved parses flags wherever they appear among the positional
// arguments (the standard library stops at the first positional). With
// stopAtFirst it stops at the first positional instead: the top level must
// leave the subcommand's own flags alone. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string, stopAtFirst bool) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usageErrorf("%s: see the usage below", fs.Name())
			}
			return nil, usageErrorf("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 || stopAtFirst {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseCommand parses a subcommand's flags, re-checks the global ones and
// enforces the number of positional arguments.
func (c *cli) parseCommand(fs *flag.FlagSet, args []string, minArgs, maxArgs int, argNames string) ([]string, error) {
	pos, err := parseInterleaved(fs, args, false)
	if err != nil {
		return nil, err
	}
	if err := c.checkGlobal(); err != nil {
		return nil, err
	}
	if len(pos) < minArgs {
		return nil, usageErrorf("%s: missing %s", fs.Name(), argNames)
	}
	if maxArgs >= 0 && len(pos) > maxArgs {
		return nil, usageErrorf("%s: unexpected argument %q", fs.Name(), pos[maxArgs])
	}
	return pos, nil
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
	if value == "" {
		return json.RawMessage(`{}`), nil
	}
	data, source := []byte(value), "--context"
	if strings.HasPrefix(value, "@") {
		path := value[1:]
		var err error
		if path == "-" {
			data, err = io.ReadAll(stdin)
			source = "--context @- (stdin)"
		} else {
			data, err = os.ReadFile(path)
			source = "--context file " + path
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
