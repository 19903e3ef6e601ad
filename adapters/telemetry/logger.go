// Package telemetry builds the services' logger (zap) and metrics.
package telemetry

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Log formats accepted by NewLogger (the values of config logging.format).
const (
	// FormatJSON is one JSON object per line, for log shippers (production).
	FormatJSON = "json"
	// FormatConsole is zap's human-readable development layout.
	FormatConsole = "console"
)

// LoggerOptions configures NewLogger. It carries plain values instead of the
// config package's LoggingConfig so telemetry does not depend on another
// adapter; a composition root passes cfg.Logging.Level and cfg.Logging.Format.
type LoggerOptions struct {
	// Level is debug, info, warn or error; empty means info.
	Level string
	// Format is json or console; empty means console.
	Format string
	// Output receives the log lines; nil means standard error, so that
	// command output on standard out (taskerctl --output json) stays clean.
	Output zapcore.WriteSyncer
	// Fields are attached to every entry, e.g. zap.String("service", "worker").
	Fields []zap.Field
}

var levels = map[string]zapcore.Level{
	"debug": zapcore.DebugLevel,
	"info":  zapcore.InfoLevel,
	"warn":  zapcore.WarnLevel,
	"error": zapcore.ErrorLevel,
}

// Log sampling of WARN and above (issue 13): per second, the first
// SampleInitial entries with the same level and message are written, then
// every SampleThereafter-th. 1,000 identical errors in a second become about
// 20 lines, so an outage with retrying clients cannot flood the log, while
// distinct messages and INFO lines (the access log) are never dropped.
const (
	SampleTick       = time.Second
	SampleInitial    = 10
	SampleThereafter = 100
)

// NewLogger returns a zap logger writing entries at or above the level in
// the chosen format, with caller information. Stack traces are attached
// only from DPANIC up (panics: middleware.Recovery adds its own), because
// an ERROR is an expected failure whose trace says nothing new and costs
// forty lines. WARN and ERROR entries are sampled (see SampleInitial).
// An unknown level or format is an error rather than a silent fallback, so
// a typo in the config is noticed at start.
func NewLogger(opts LoggerOptions) (*zap.Logger, error) {
	levelName := opts.Level
	if levelName == "" {
		levelName = "info"
	}
	level, ok := levels[levelName]
	if !ok {
		return nil, fmt.Errorf("new logger: level %q: must be one of debug, info, warn, error", opts.Level)
	}

	var encoder zapcore.Encoder
	switch opts.Format {
	case FormatJSON:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		encoder = zapcore.NewJSONEncoder(ec)
	case FormatConsole, "":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		encoder = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("new logger: format %q: must be one of json, console", opts.Format)
	}

	out := opts.Output
	if out == nil {
		out = zapcore.Lock(os.Stderr)
	}
	atom := zap.NewAtomicLevelAt(level)
	below := zap.LevelEnablerFunc(func(l zapcore.Level) bool { return atom.Enabled(l) && l < zapcore.WarnLevel })
	above := zap.LevelEnablerFunc(func(l zapcore.Level) bool { return atom.Enabled(l) && l >= zapcore.WarnLevel })
	core := zapcore.NewTee(
		zapcore.NewCore(encoder, out, below),
		zapcore.NewSamplerWithOptions(zapcore.NewCore(encoder, out, above), SampleTick, SampleInitial, SampleThereafter),
	)
	return zap.New(core,
		zap.AddCaller(),
		zap.AddStacktrace(zapcore.DPanicLevel),
		zap.ErrorOutput(out),
		zap.Fields(opts.Fields...),
	), nil
}
