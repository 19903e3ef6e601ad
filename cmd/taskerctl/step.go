package main

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

func init() { registerGroup(stepCommand) }

// stepCommand is `taskerctl step …`: one workflow step of a task.
func stepCommand(c *cli) *cobra.Command {
	cmd := groupCommand("step", "Inspect or manually resolve one workflow step")
	cmd.AddCommand(c.stepGetCommand(), c.stepResolveCommand())
	return cmd
}

func (c *cli) stepGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get TASK_UUID STEP_UUID",
		Short: "Show one workflow step with its result",
		Args:  c.exactArgs("TASK_UUID", "STEP_UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			taskID, stepID, err := parseStepArgs("step get", args)
			if err != nil {
				return err
			}
			client, err := c.newClient()
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			step, err := client.GetStep(cmd.Context(), taskID, stepID)
			if err != nil {
				return fmt.Errorf("get step %s of task %s: %w", stepID, taskID, err)
			}
			return c.printSteps([]httpclient.StepResponse{step})
		},
	}
}

// resolveFlags are the flags of `step resolve`.
type resolveFlags struct {
	data, resolvedBy, reason string
}

func (c *cli) stepResolveCommand() *cobra.Command {
	var f resolveFlags
	cmd := &cobra.Command{
		Use:   "resolve TASK_UUID STEP_UUID --resolved-by WHO --reason WHY [--data JSON|@FILE|@-]",
		Short: "Resolve a step manually so the task can move on (contract §7.5)",
		Long: `Resolve a step manually: it becomes resolved_manually with --data as its
result (default {}), its dependants become ready and the task continues.
Use it for a step in error that an operator has fixed by hand.`,
		Example: `  taskerctl step resolve $TASK $STEP --resolved-by alice --reason "charged by hand" --data '{"charged": true}'`,
		Args:    c.exactArgs("TASK_UUID", "STEP_UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			taskID, stepID, err := parseStepArgs("step resolve", args)
			if err != nil {
				return err
			}
			if f.resolvedBy == "" || f.reason == "" {
				return usageErrorf("step resolve: --resolved-by and --reason are required")
			}
			data, err := readJSONObjectArg("--data", f.data, c.stdin)
			if err != nil {
				return err
			}
			client, err := c.newClient()
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			step, err := client.ResolveStep(cmd.Context(), taskID, stepID,
				httpclient.StepResolution{ResolutionData: data, ResolvedBy: f.resolvedBy, Reason: f.reason})
			if err != nil {
				return fmt.Errorf("resolve step %s of task %s: %w", stepID, taskID, err)
			}
			if c.jsonOutput() {
				return c.printJSON(step)
			}
			fmt.Fprintf(c.stdout, "step %s (%s) is %s\n", step.StepUUID, step.Name, step.CurrentState)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "the step's result: a JSON object, @FILE or @- for stdin (default {})")
	fl.StringVar(&f.resolvedBy, "resolved-by", "", "who resolves the step (required)")
	fl.StringVar(&f.reason, "reason", "", "why, for the audit trail (required)")
	return cmd
}

// parseStepArgs reads TASK_UUID STEP_UUID.
func parseStepArgs(cmd string, args []string) (uuid.UUID, uuid.UUID, error) {
	taskID, err := parseTaskUUID(cmd, args[0])
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	stepID, err := uuid.Parse(args[1])
	if err != nil {
		return uuid.Nil, uuid.Nil, inputErrorf("%s: %q is not a step UUID: %v", cmd, args[1], err)
	}
	return taskID, stepID, nil
}
