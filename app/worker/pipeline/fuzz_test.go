package pipeline

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseStepMessage checks the queue message decoder (contract §4.3):
// never a panic, and whatever it accepts is small, names two UUIDs and
// round-trips.
func FuzzParseStepMessage(f *testing.F) {
	for _, seed := range []string{
		`{"task_uuid":"0198f0c2-aaaa-7000-8000-000000000001","step_uuid":"0198f0c2-aaaa-7000-8000-000000000002"}`,
		`{"task_uuid":null,"step_uuid":"x"}`, `[]`, `null`, `{"task_uuid":"\u0000"}`, `{"a":1e400000}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseStepMessage(data, 1024)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(data), 1024)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		back, err := ParseStepMessage(b, 1024)
		require.NoError(t, err)
		require.Equal(t, m, back)
	})
}
