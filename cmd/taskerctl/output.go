package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

// printJSON writes v as indented JSON: the API's own shapes, for scripts.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

func (c *cli) printCreated(r domain.TaskCreationResponse) error {
	if c.jsonOutput() {
		return c.printJSON(r)
	}
	fmt.Fprintf(c.stdout, "created task %s (%s, %d steps)\n", r.TaskUUID, r.HandlerConfigName, r.StepCount)
	names := make([]string, 0, len(r.StepMapping))
	for name := range r.StepMapping {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(c.stdout, "  %-32s %s\n", name, r.StepMapping[name])
	}
	return nil
}

func (c *cli) printTask(t httpclient.TaskResponse) error {
	if c.jsonOutput() {
		return c.printJSON(t)
	}
	fmt.Fprintf(c.stdout, "task       %s\n", t.TaskUUID)
	fmt.Fprintf(c.stdout, "template   %s/%s/%s\n", t.Namespace, t.Name, t.Version)
	fmt.Fprintf(c.stdout, "status     %s (%s, %s)\n", t.Status, t.ExecutionStatus, t.HealthStatus)
	fmt.Fprintf(c.stdout, "steps      %d/%d complete (%.2f%%), %d in progress, %d failed, %d ready\n",
		t.CompletedSteps, t.TotalSteps, t.CompletionPercentage, t.InProgressSteps, t.FailedSteps, t.ReadySteps)
	fmt.Fprintf(c.stdout, "created    %s\n", t.CreatedAt.UTC().Format(time.RFC3339))
	if t.CompletedAt != nil {
		fmt.Fprintf(c.stdout, "completed  %s (%s)\n", t.CompletedAt.UTC().Format(time.RFC3339),
			t.CompletedAt.Sub(t.CreatedAt).Round(time.Millisecond))
	}
	fmt.Fprintf(c.stdout, "context    %s\n", compact(t.Context, 200))
	if len(t.Steps) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tSTATE\tPARENTS\tATTEMPTS\tREADY")
	for _, s := range t.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d/%d\t%t\n", s.Name, s.CurrentState, s.CompletedParents, s.TotalParents,
			s.Attempts, s.RetryLimit, s.ReadyForExecution)
	}
	return tw.Flush()
}

func (c *cli) printTaskList(l httpclient.TaskList) error {
	if c.jsonOutput() {
		return c.printJSON(l)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tTEMPLATE\tSTATUS\tSTEPS\tCREATED")
	for _, t := range l.Tasks {
		fmt.Fprintf(tw, "%s\t%s/%s/%s\t%s\t%d/%d\t%s\n", t.TaskUUID, t.Namespace, t.Name, t.Version, t.Status,
			t.CompletedSteps, t.TotalSteps, t.CreatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p := l.Pagination
	fmt.Fprintf(c.stdout, "page %d of %d (%d tasks)\n", p.Page, max(p.TotalPages, 1), p.TotalCount)
	return nil
}

func (c *cli) printSteps(steps []httpclient.StepResponse) error {
	if c.jsonOutput() {
		if steps == nil {
			steps = []httpclient.StepResponse{}
		}
		return c.printJSON(steps)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATE\tATTEMPTS\tCOMPLETED\tRESULT")
	for _, s := range steps {
		completed := "-"
		if s.CompletedAt != nil {
			completed = s.CompletedAt.UTC().Format("15:04:05.000")
		}
		result := compact(s.Result(), 60)
		if s.CurrentState == string(domain.StepError) {
			result = "error: " + stepErrorMessage(s.Results)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", s.Name, s.CurrentState, s.Attempts, s.RetryLimit, completed, result)
	}
	return tw.Flush()
}

func (c *cli) printOutcome(o waitOutcome) {
	t := o.Task
	fmt.Fprintf(c.stdout, "task %s %s after %s: %d/%d steps complete\n", t.TaskUUID, t.Status,
		(time.Duration(o.ElapsedMs) * time.Millisecond).String(), t.CompletedSteps, t.TotalSteps)
	for _, s := range o.FinalSteps {
		if s.Error != "" {
			fmt.Fprintf(c.stdout, "step %s failed: %s\n", s.Name, s.Error)
			continue
		}
		fmt.Fprintf(c.stdout, "result of %s: %s\n", s.Name, compact(s.Result, 0))
	}
}

// compact renders JSON on one line, cut to limit runes (0: no limit).
func compact(raw json.RawMessage, limit int) string {
	if len(raw) == 0 {
		return "-"
	}
	var b strings.Builder
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		b.Write(raw)
	} else {
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
	}
	s := strings.TrimSpace(b.String())
	if r := []rune(s); limit > 0 && len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return s
}
