package telemetry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
)

// syncBuffer is a goroutine-safe in-memory log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(b.buf.String()))
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

func TestNewLoggerJSONHonoursLevel(t *testing.T) {
	t.Parallel()
	sink := &syncBuffer{}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{
		Level: "warn", Format: "json", Output: sink, Fields: []zap.Field{zap.String("service", "worker")},
	})
	require.NoError(t, err)
	log.Debug("debug dropped")
	log.Info("info dropped")
	log.Warn("kept", zap.Int("n", 3))
	log.Error("also kept")

	lines := sink.lines()
	require.Len(t, lines, 2)
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &entry), "production format is JSON: %s", lines[0])
	require.Equal(t, "warn", entry["level"])
	require.Equal(t, "kept", entry["msg"])
	require.EqualValues(t, 3, entry["n"])
	require.Equal(t, "worker", entry["service"])
	require.Contains(t, entry, "ts")
	require.Contains(t, entry, "caller")
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &entry))
	require.Equal(t, "error", entry["level"])
	require.NotContains(t, entry, "stacktrace", "errors carry no stack trace (issue 13: only panics do)")
}

func TestNewLoggerConsole(t *testing.T) {
	t.Parallel()
	sink := &syncBuffer{}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: "debug", Format: "console", Output: sink})
	require.NoError(t, err)
	log.Debug("visible at debug", zap.String("k", "v"))

	lines := sink.lines()
	require.Len(t, lines, 1)
	require.False(t, json.Valid([]byte(lines[0])), "console format is not JSON: %s", lines[0])
	require.Contains(t, lines[0], "DEBUG")
	require.Contains(t, lines[0], "visible at debug")
	require.Contains(t, lines[0], `{"k": "v"}`)
}

func TestNewLoggerDefaultsToInfoConsole(t *testing.T) {
	t.Parallel()
	sink := &syncBuffer{}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Output: sink})
	require.NoError(t, err)
	log.Debug("dropped")
	log.Info("shown")
	lines := sink.lines()
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], "INFO")
	require.False(t, json.Valid([]byte(lines[0])))
}

func TestNewLoggerRejectsUnknownValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts telemetry.LoggerOptions
		want string
	}{
		{"level", telemetry.LoggerOptions{Level: "verbose"}, `level "verbose": must be one of debug, info, warn, error`},
		{"level case", telemetry.LoggerOptions{Level: "INFO"}, `level "INFO"`},
		{"fatal not allowed", telemetry.LoggerOptions{Level: "fatal"}, `level "fatal"`},
		{"format", telemetry.LoggerOptions{Format: "text"}, `format "text": must be one of json, console`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, err := telemetry.NewLogger(tt.opts)
			require.Nil(t, log)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// The production environment selects JSON and TASKER_LOGGING__LEVEL reaches
// the logger through the configuration.
func TestLoggerFromLoadedConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(config.LoadOptions{
		ConfigDir: "../../configs/tasker",
		Environ:   []string{"TASKER_ENV=production", "TASKER_LOGGING__LEVEL=error"},
	})
	require.NoError(t, err)
	sink := &syncBuffer{}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: cfg.Logging.Level, Format: cfg.Logging.Format, Output: sink})
	require.NoError(t, err)
	log.Warn("dropped at error level")
	log.Error("shown")
	lines := sink.lines()
	require.Len(t, lines, 1)
	require.True(t, json.Valid([]byte(lines[0])), lines[0])

	dev, err := config.Load(config.LoadOptions{ConfigDir: "../../configs/tasker", Environ: []string{}})
	require.NoError(t, err)
	sink = &syncBuffer{}
	log, err = telemetry.NewLogger(telemetry.LoggerOptions{Level: dev.Logging.Level, Format: dev.Logging.Format, Output: sink})
	require.NoError(t, err)
	log.Debug("development logs debug in console format")
	lines = sink.lines()
	require.Len(t, lines, 1)
	require.False(t, json.Valid([]byte(lines[0])))
}

// TestLoggerSamplesRepeatedErrorsWithoutStacks is the issue 13 log
// amplification case: before, each failed request logged ERROR with a
// ~40-line stack trace and 1,000 of them logged 1,000 entries.
func TestLoggerSamplesRepeatedErrorsWithoutStacks(t *testing.T) {
	out := &syncBuffer{}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Format: telemetry.FormatJSON, Output: out})
	require.NoError(t, err)
	for range 1000 {
		log.Error("request failed", zap.String("path", "/v1/tasks"))
	}
	for i := range 50 {
		log.Info("http request", zap.Int("n", i))
	}
	var errorsLogged, infos int
	for _, l := range out.lines() {
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		require.NotContains(t, e, "stacktrace", "no stack trace on an ERROR")
		switch e["level"] {
		case "error":
			errorsLogged++
		case "info":
			infos++
		}
	}
	t.Logf("1000 identical errors → %d lines; 50 info lines → %d", errorsLogged, infos)
	require.LessOrEqual(t, errorsLogged, 25)
	require.GreaterOrEqual(t, errorsLogged, telemetry.SampleInitial)
	require.Equal(t, 50, infos, "INFO (the access log) is not sampled")
}
