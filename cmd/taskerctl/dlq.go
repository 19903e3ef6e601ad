package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

func init() { registerGroup(dlqCommand) }

// dlqCommand is `taskerctl dlq …`: the dead-letter entries the
// orchestration recorded for work that could never finish.
func dlqCommand(c *cli) *cobra.Command {
	cmd := groupCommand("dlq", "Inspect, requeue and resolve dead-lettered work")
	cmd.AddCommand(c.dlqListCommand(), c.dlqShowCommand(), c.dlqRequeueCommand(), c.dlqResolveCommand())
	return cmd
}

func (c *cli) dlqListCommand() *cobra.Command {
	var opts httpclient.ListDLQOptions
	cmd := &cobra.Command{
		Use:     "list [--namespace NS] [--reason R] [--status S] [--page N] [--per-page N]",
		Short:   "List dead-letter entries, newest first",
		Example: "  taskerctl dlq list --status open\n  taskerctl dlq list --reason enqueued_timeout -o json",
		Args:    c.noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Reason != "" && !domain.DLQReason(opts.Reason).Valid() {
				return usageErrorf("dlq list: --reason %q is not one of enqueued_timeout, message_archived, task_timeout, poison_message", opts.Reason)
			}
			if opts.Status != "" && !domain.DLQStatus(opts.Status).Valid() {
				return usageErrorf("dlq list: --status %q is not one of open, requeued, resolved", opts.Status)
			}
			if opts.Page < 1 || opts.PerPage < 1 || opts.PerPage > 100 {
				return usageErrorf("dlq list: --page must be ≥ 1 and --per-page in 1..100")
			}
			client, err := c.newClient()
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			list, err := client.ListDLQ(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("list dlq entries: %w", err)
			}
			if c.jsonOutput() {
				return c.printJSON(list)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ENTRY\tREASON\tSTATUS\tNAMESPACE\tTASK\tSTEP\tCREATED")
			for _, e := range list.Entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.EntryUUID, e.Reason, e.Status, dash(e.Namespace),
					optUUID(e.TaskUUID), optUUID(e.StepUUID), e.CreatedAt.UTC().Format(time.RFC3339))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			p := list.Pagination
			fmt.Fprintf(c.stdout, "page %d of %d (%d entries)\n", p.Page, max(p.TotalPages, 1), p.TotalCount)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Namespace, "namespace", "", "only this namespace")
	fl.StringVar(&opts.Reason, "reason", "", "only this reason (enqueued_timeout, message_archived, task_timeout, poison_message)")
	fl.StringVar(&opts.Status, "status", "", "only this status (open, requeued, resolved)")
	fl.IntVar(&opts.Page, "page", 1, "page number, from 1")
	fl.IntVar(&opts.PerPage, "per-page", 25, "entries per page, 1..100")
	return cmd
}

func (c *cli) dlqShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ENTRY_UUID",
		Short: "Show one dead-letter entry",
		Args:  c.exactArgs("ENTRY_UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.onEntry("dlq show", args[0], func(client *httpclient.Client, id uuid.UUID) (httpclient.DLQEntry, error) {
				return client.GetDLQ(cmd.Context(), id)
			})
		},
	}
}

func (c *cli) dlqRequeueCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "requeue ENTRY_UUID",
		Short: "Send the entry's work again (the step with a fresh attempt budget, or the message)",
		Long: `Requeue an open entry: its step goes back to pending with a fresh attempt
budget and its task from error to pending, so the orchestration enqueues the
step again and the task runs on; a poison message is sent to its queue again.
Fix the cause first (start a worker for the namespace, repair the data).`,
		Args: c.exactArgs("ENTRY_UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.onEntry("dlq requeue", args[0], func(client *httpclient.Client, id uuid.UUID) (httpclient.DLQEntry, error) {
				return client.RequeueDLQ(cmd.Context(), id)
			})
		},
	}
}

func (c *cli) dlqResolveCommand() *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:     "resolve ENTRY_UUID --note TEXT",
		Short:   "Mark an entry resolved with a note (nothing is sent again)",
		Example: `  taskerctl dlq resolve $ENTRY --note "order refunded by hand"`,
		Args:    c.exactArgs("ENTRY_UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if note == "" {
				return usageErrorf("dlq resolve: --note is required")
			}
			return c.onEntry("dlq resolve", args[0], func(client *httpclient.Client, id uuid.UUID) (httpclient.DLQEntry, error) {
				return client.ResolveDLQ(cmd.Context(), id, note)
			})
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why it is resolved (required)")
	return cmd
}

// onEntry parses ENTRY_UUID, runs op and prints the entry it returns.
func (c *cli) onEntry(name, arg string, op func(*httpclient.Client, uuid.UUID) (httpclient.DLQEntry, error)) error {
	id, err := uuid.Parse(arg)
	if err != nil {
		return inputErrorf("%s: %q is not an entry UUID: %v", name, arg, err)
	}
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	e, err := op(client, id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, id, err)
	}
	if c.jsonOutput() {
		return c.printJSON(e)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	for _, row := range [][2]string{{"entry", e.EntryUUID.String()}, {"status", e.Status}, {"reason", e.Reason},
		{"namespace", dash(e.Namespace)}, {"task", optUUID(e.TaskUUID)}, {"step", optUUID(e.StepUUID)},
		{"created", e.CreatedAt.UTC().Format(time.RFC3339)}, {"updated", e.UpdatedAt.UTC().Format(time.RFC3339)},
		{"detail", dash(e.Detail)}, {"note", dash(deref(e.ResolutionNote))}} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func optUUID(id *uuid.UUID) string {
	if id == nil {
		return "-"
	}
	return id.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
