package redact_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/redact"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://user:s3cret@orch:8080/x":                 "http://REDACTED@orch:8080/x",
		"postgres://tasker:pw@db:5432/t?sslmode=disable": "postgres://REDACTED@db:5432/t?sslmode=disable",
		"htp://u:p@h":                             "htp://REDACTED@h",
		`parse "http://u:p@h:bad": invalid port`:  `parse "http://REDACTED@h:bad": invalid port`,
		"host=db user=t password=s3cret dbname=x": "host=db user=t password=REDACTED dbname=x",
		"http://orch:8080":                        "http://orch:8080",
	} {
		require.Equal(t, want, redact.URL(in), in)
		require.NotContains(t, redact.URL(in), "s3cret")
	}
}
