package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/internal/buildinfo"
)

func init() { registerGroup(versionCommand) }

// versionCommand is `taskerctl version`, the same as --version but with
// --output json for scripts.
func versionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the taskerctl version",
		Args:  c.noArgs,
		RunE: func(*cobra.Command, []string) error {
			if c.jsonOutput() {
				return c.printJSON(map[string]string{"version": buildinfo.Get(), "go": runtime.Version(),
					"platform": runtime.GOOS + "/" + runtime.GOARCH})
			}
			fmt.Fprintln(c.stdout, buildinfo.String("taskerctl"))
			return nil
		},
	}
}
