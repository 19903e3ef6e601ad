package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func init() { registerGroup(healthCommand) }

// healthCommand is `taskerctl health`.
func healthCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that the orchestration answers GET /health",
		Args:  c.noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.health(cmd.Context()) },
	}
}

func (c *cli) health(ctx context.Context) error {
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	start := time.Now()
	if err := client.Health(ctx); err != nil {
		return fmt.Errorf("orchestration at %s is not healthy: %w", client.BaseURL(), err)
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	if c.jsonOutput() {
		return c.printJSON(map[string]any{"status": "ok", "url": client.BaseURL(), "elapsed_ms": elapsed.Milliseconds()})
	}
	fmt.Fprintf(c.stdout, "orchestration at %s: ok (%s)\n", client.BaseURL(), elapsed)
	return nil
}
