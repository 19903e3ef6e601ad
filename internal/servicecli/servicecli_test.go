package servicecli

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func newTestRoot(runErr error) *cobra.Command {
	root := NewRoot("svc", "a service", "A service.")
	root.RunE = func(*cobra.Command, []string) error { return runErr }
	sub := &cobra.Command{Use: "sub", Short: "a subcommand", Args: NoArgs,
		RunE: func(*cobra.Command, []string) error { return errors.New("line one\nline two") }}
	root.AddCommand(sub)
	return root
}

func TestExecute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		runErr    error
		code      int
		stdout    string
		stderr    string
		stderrNot string
	}{
		{name: "success", code: ExitOK},
		{name: "help lists env", args: []string{"--help"}, code: ExitOK, stdout: "DATABASE_URL"},
		{name: "version", args: []string{"--version"}, code: ExitOK, stdout: "svc "},
		{name: "unknown flag", args: []string{"--nope"}, code: ExitUsage, stderr: "svc: unknown flag: --nope"},
		{name: "stray argument", args: []string{"bogus"}, code: ExitUsage, stderr: `svc: unknown command "bogus"`},
		{name: "stray argument of a subcommand", args: []string{"sub", "x"}, code: ExitUsage, stderr: `svc sub: unexpected argument "x"`},
		{name: "failure is one line", args: []string{"sub"}, code: ExitFailed, stderr: "svc sub: line one line two\n"},
		{name: "root failure", runErr: errors.New("boom"), code: ExitFailed, stderr: "svc: boom\n", stderrNot: "--help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := Execute(newTestRoot(tt.runErr), tt.args, &out, &errOut)
			require.Equal(t, tt.code, code, errOut.String())
			require.Contains(t, out.String(), tt.stdout)
			require.Contains(t, errOut.String(), tt.stderr)
			if tt.stderrNot != "" {
				require.NotContains(t, errOut.String(), tt.stderrNot)
			}
		})
	}
}
