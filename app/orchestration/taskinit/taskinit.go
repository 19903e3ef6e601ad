// Package taskinit creates tasks from registered templates (contract §10.1):
// it validates the request, finds the exact (namespace, name, version)
// template, resolves it for the orchestration's environment, and hands the
// resulting rows to a ports.TaskCreator that writes them in one transaction.
// The HTTP API and the orchestration_task_requests consumer share it.
package taskinit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/app/orchestration/inputschema"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DefaultSystemDependency is the dependent system of steps whose template
// names none (contract §10.1 step 3).
const DefaultSystemDependency = "default"

// TemplateFinder finds a registered template by exact identity (D-f).
type TemplateFinder interface {
	GetTemplate(ctx context.Context, namespace, name, version string) (ports.RegisteredTemplate, error)
}

// MaxCachedTemplates bounds the cache of resolved templates; templates are
// few, so the bound only matters against a pathological number of them.
const MaxCachedTemplates = 1024

// Initializer creates tasks. It is safe for concurrent use.
type Initializer struct {
	templates   TemplateFinder
	creator     ports.TaskCreator
	environment string
	schemas     *inputschema.Validator

	mu sync.Mutex
	// resolved caches, per named task, the template parsed, resolved for
	// the environment, validated and mapped to step rows, with the stored
	// configuration it came from: every creation still reads the template
	// (a re-registration must take effect at once), but only a changed
	// configuration is parsed again.
	resolved map[uuid.UUID]*resolvedTemplate
}

// resolvedTemplate is a registered template ready for task creation.
type resolvedTemplate struct {
	configuration json.RawMessage
	tmpl          domain.TaskTemplate
	// steps are shared by every task of the template: read only.
	steps []ports.NewStep
}

// New returns an Initializer resolving templates for environment (D-q).
func New(templates TemplateFinder, creator ports.TaskCreator, environment string) *Initializer {
	return &Initializer{templates: templates, creator: creator, environment: environment, schemas: inputschema.New(),
		resolved: map[uuid.UUID]*resolvedTemplate{}}
}

// CreateTask validates req, applies its defaults and creates the task.
// Errors: *domain.ValidationError or *domain.TemplateValidationError for a bad
// request or template (400), *ports.NotFoundError for an unknown template
// (404) — including a context that does not match the template's
// input_schema (a ValidationError with the JSON pointer); anything else is an infrastructure failure. Nothing is written on
// any error.
func (s *Initializer) CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error) {
	return s.CreateTaskIdempotent(ctx, req, "")
}

// CreateTaskIdempotent is CreateTask with an Idempotency-Key: when key is not
// empty, a request with a key already recorded returns the first task's
// response (Replayed set) and one with the key but another body fails with
// *ports.IdempotencyConflictError. The request is validated first either way,
// so a bad request never consumes a key.
func (s *Initializer) CreateTaskIdempotent(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error) {
	req.ApplyDefaults()
	if err := req.Validate(); err != nil {
		return domain.TaskCreationResponse{}, err
	}
	reg, err := s.templates.GetTemplate(ctx, req.Namespace, req.Name, req.Version)
	notFound := &ports.NotFoundError{What: fmt.Sprintf("Task template not found: %s/%s/%s", req.Namespace, req.Name, req.Version)}
	if errors.Is(err, ports.ErrNotFound) {
		return domain.TaskCreationResponse{}, notFound
	}
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("find template %s/%s/%s: %w", req.Namespace, req.Name, req.Version, err)
	}
	if emptyConfiguration(reg.Configuration) {
		return domain.TaskCreationResponse{}, notFound
	}
	rt, err := s.resolve(reg, req.Namespace+"/"+req.Name+"/"+req.Version)
	if err != nil {
		return domain.TaskCreationResponse{}, err
	}
	// The context must match input_schema before anything is written, so a
	// bad context is a 400 naming the value and not a handler failure later.
	if err := s.schemas.Validate(rt.tmpl.InputSchema, req.Context); err != nil {
		return domain.TaskCreationResponse{}, err
	}
	hash, err := domain.IdentityHash(reg.NamedTaskUUID, req.Context)
	if err != nil {
		return domain.TaskCreationResponse{}, err
	}
	var reqHash string
	if key != "" {
		if reqHash, err = domain.RequestHash(req); err != nil {
			return domain.TaskCreationResponse{}, err
		}
	}
	resp, err := s.creator.CreateTask(ctx, ports.NewTask{
		IdempotencyKey: key,
		RequestHash:    reqHash,
		NamedTaskUUID:  reg.NamedTaskUUID,
		TaskName:       reg.Name,
		Request:        req,
		Context:        req.Context,
		IdentityHash:   hash,
		Steps:          rt.steps,
	})
	if err == nil && !resp.Replayed {
		for _, st := range rt.steps {
			if len(st.Dependencies) == 0 {
				resp.RootSteps = append(resp.RootSteps, st.Name)
			}
		}
	}
	return resp, err
}

// resolve returns reg's template parsed, resolved for the environment,
// validated and mapped to step rows, from the cache when reg's
// configuration is the one cached. Errors are not cached.
func (s *Initializer) resolve(reg ports.RegisteredTemplate, label string) (*resolvedTemplate, error) {
	s.mu.Lock()
	rt, ok := s.resolved[reg.NamedTaskUUID]
	s.mu.Unlock()
	if ok && bytes.Equal(rt.configuration, reg.Configuration) {
		return rt, nil
	}
	tmpl, err := domain.ParseTemplateJSON(reg.Configuration)
	if err != nil {
		return nil, &domain.ValidationError{
			Field: "template", Reason: fmt.Sprintf("stored template %s is unreadable: %v", label, err)}
	}
	tmpl = tmpl.ResolveForEnvironment(s.environment)
	if err := tmpl.Validate(); err != nil {
		return nil, err
	}
	steps, err := newSteps(tmpl)
	if err != nil {
		return nil, err
	}
	rt = &resolvedTemplate{configuration: append(json.RawMessage(nil), reg.Configuration...), tmpl: tmpl, steps: steps}
	s.mu.Lock()
	if len(s.resolved) >= MaxCachedTemplates {
		clear(s.resolved)
	}
	s.resolved[reg.NamedTaskUUID] = rt
	s.mu.Unlock()
	return rt, nil
}

// newSteps maps template steps to rows, in template order.
func newSteps(t domain.TaskTemplate) ([]ports.NewStep, error) {
	primary := t.SystemDependencies.Primary
	if primary == "" {
		primary = DefaultSystemDependency
	}
	out := make([]ports.NewStep, len(t.Steps))
	for i, st := range t.Steps {
		system := primary
		if st.SystemDependency != nil && *st.SystemDependency != "" {
			system = *st.SystemDependency
		}
		var inputs json.RawMessage
		if len(st.Handler.Initialization) > 0 {
			b, err := json.Marshal(st.Handler.Initialization)
			if err != nil {
				return nil, fmt.Errorf("encode initialization of step %q: %w", st.Name, err)
			}
			inputs = b
		}
		out[i] = ports.NewStep{
			Name:             st.Name,
			SystemDependency: system,
			Retryable:        st.Retry.Retryable,
			RetryLimit:       int(st.Retry.Limit),
			Inputs:           inputs,
			Dependencies:     st.Dependencies,
		}
	}
	return out, nil
}

func emptyConfiguration(c json.RawMessage) bool {
	t := bytes.TrimSpace(c)
	return len(t) == 0 || bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}"))
}
