package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

// waitOutcome is what `task create --wait --output json` prints.
type waitOutcome struct {
	Task      httpclient.TaskResponse `json:"task"`
	ElapsedMs int64                   `json:"elapsed_ms"`
	// FinalSteps are the steps that explain the outcome: the last step
	// (for a complete task) or the failed steps (for a task in error).
	FinalSteps []finalStep `json:"final_steps"`
	// Result is the last step's handler result for a complete task, else null.
	Result json.RawMessage `json:"result"`
}

// finalStep is one step of waitOutcome.
type finalStep struct {
	Name         string          `json:"name"`
	StepUUID     uuid.UUID       `json:"step_uuid"`
	CurrentState string          `json:"current_state"`
	Result       json.RawMessage `json:"result"`
	Error        string          `json:"error,omitempty"`
}

// progress is what a progress line shows; a line is printed when it changes.
type progress struct {
	status                           string
	completed, inProgress, failed, n int64
}

// wait polls the task until it leaves pending/in_progress, printing progress
// on stderr (human output), then prints the outcome. A task that is not
// complete at the end is exit code 1.
func (c *cli) wait(ctx context.Context, client *httpclient.Client, id uuid.UUID, every, timeout time.Duration, start time.Time) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var last progress
	var task httpclient.TaskResponse // the latest answer, reported if the wait is cut short
	for {
		latest, err := client.GetTask(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return c.stoppedWaiting(ctx, id, task, timeout)
			}
			return fmt.Errorf("wait for task %s: %w", id, err)
		}
		task = latest
		p := progress{status: task.Status, completed: task.CompletedSteps, inProgress: task.InProgressSteps,
			failed: task.FailedSteps, n: task.TotalSteps}
		if p != last && !c.jsonOutput() {
			fmt.Fprintf(c.stderr, "  %-12s %d/%d steps complete, %d in progress, %d failed (%s)\n",
				task.Status, p.completed, p.n, p.inProgress, p.failed, time.Since(start).Round(time.Millisecond))
		}
		last = p
		if finished(task.Status) {
			return c.finish(ctx, client, task, start)
		}
		select {
		case <-ctx.Done():
			return c.stoppedWaiting(ctx, id, task, timeout)
		case <-ticker.C:
		}
	}
}

// finished reports whether waiting is over: terminal states and error, which
// only an operator can move on (contract §3.1: Reset or ResolveManually).
func finished(status string) bool {
	s := domain.TaskState(status)
	return s.IsTerminal() || s == domain.TaskError
}

func (c *cli) stoppedWaiting(ctx context.Context, id uuid.UUID, task httpclient.TaskResponse, timeout time.Duration) error {
	state := "unknown"
	if task.Status != "" {
		state = fmt.Sprintf("%s, %d/%d steps complete", task.Status, task.CompletedSteps, task.TotalSteps)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &exitError{code: exitFailed, err: fmt.Errorf(
			"timed out after %s waiting for task %s (last seen: %s); it keeps running: taskerctl task get %s",
			timeout, id, state, id)}
	}
	return &exitError{code: exitFailed, err: fmt.Errorf(
		"interrupted while waiting for task %s (last seen: %s); it keeps running: taskerctl task get %s", id, state, id)}
}

// finish fetches the steps and prints the outcome.
func (c *cli) finish(ctx context.Context, client *httpclient.Client, task httpclient.TaskResponse, start time.Time) error {
	steps, err := client.ListSteps(ctx, task.TaskUUID)
	if err != nil {
		return fmt.Errorf("task %s is %s, but reading its steps failed: %w", task.TaskUUID, task.Status, err)
	}
	out := waitOutcome{Task: task, ElapsedMs: time.Since(start).Milliseconds(), FinalSteps: []finalStep{}, Result: json.RawMessage("null")}
	switch domain.TaskState(task.Status) {
	case domain.TaskComplete, domain.TaskResolvedManually:
		if s, ok := lastStep(steps); ok {
			fs := toFinal(s)
			out.FinalSteps = append(out.FinalSteps, fs)
			if task.Status == string(domain.TaskComplete) && fs.Result != nil {
				out.Result = fs.Result
			}
		}
	default:
		for _, s := range steps {
			if s.CurrentState == string(domain.StepError) {
				out.FinalSteps = append(out.FinalSteps, toFinal(s))
			}
		}
	}
	if c.jsonOutput() {
		if err := c.printJSON(out); err != nil {
			return err
		}
	} else {
		c.printOutcome(out)
	}
	if task.Status != string(domain.TaskComplete) {
		return &exitError{code: exitFailed, err: fmt.Errorf("%w: task %s ended %s", errQuiet, task.TaskUUID, task.Status)}
	}
	return nil
}

// lastStep picks the step that finished last. The API exposes no edges, but
// a step's dependants can only finish after it, so the step with the latest
// completion time is always one with no dependants — the workflow's output.
// Ties go to the step with more parents (a join), then to the name.
func lastStep(steps []httpclient.StepResponse) (httpclient.StepResponse, bool) {
	var done []httpclient.StepResponse
	for _, s := range steps {
		if s.CompletedAt != nil {
			done = append(done, s)
		}
	}
	if len(done) == 0 {
		return httpclient.StepResponse{}, false
	}
	sort.SliceStable(done, func(i, j int) bool {
		a, b := done[i], done[j]
		if !a.CompletedAt.Equal(b.CompletedAt.Time) {
			return a.CompletedAt.After(b.CompletedAt.Time)
		}
		if a.TotalParents != b.TotalParents {
			return a.TotalParents > b.TotalParents
		}
		return a.Name < b.Name
	})
	return done[0], true
}

func toFinal(s httpclient.StepResponse) finalStep {
	f := finalStep{Name: s.Name, StepUUID: s.StepUUID, CurrentState: s.CurrentState, Result: s.Result()}
	if s.CurrentState == string(domain.StepError) {
		f.Error = stepErrorMessage(s.Results)
		f.Result = nil
	}
	return f
}

// stepErrorMessage reads error.message of a stored StepExecutionResult (§5).
func stepErrorMessage(raw json.RawMessage) string {
	var r struct {
		Error *struct {
			Message   string  `json:"message"`
			ErrorType *string `json:"error_type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Error == nil {
		return "(no error details recorded)"
	}
	if r.Error.ErrorType != nil && *r.Error.ErrorType != "" {
		return *r.Error.ErrorType + ": " + r.Error.Message
	}
	return r.Error.Message
}
