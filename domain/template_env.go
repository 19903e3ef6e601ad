package domain

// EnvironmentAllSteps is the step-override name that targets every step (contract §6.2).
const EnvironmentAllSteps = "ALL"

// ResolveForEnvironment applies environments.<env> to a deep copy of t
// (contract §6.2) and never mutates t, because the stored configuration must
// stay unresolved and each service resolves for its own environment (D-q).
//
// task_handler.initialization keys are merged into the task handler (override
// wins; nothing happens when the template has no task_handler). Step overrides
// apply in list order: "ALL" targets every step, otherwise the named step, and
// unknown names are ignored. For a targeted step handler.initialization is
// merged key by key, a non-null timeout_seconds replaces the timeout and a
// non-null retry replaces the whole retry object. An unknown environment
// yields an unchanged copy.
func (t TaskTemplate) ResolveForEnvironment(env string) TaskTemplate {
	c := t.Clone()
	o, ok := t.Environments[env]
	if !ok {
		return c
	}
	if o.TaskHandler != nil && c.TaskHandler != nil {
		c.TaskHandler.Initialization = mergeInitialization(c.TaskHandler.Initialization, o.TaskHandler.Initialization)
	}
	for _, so := range o.Steps {
		for i := range c.Steps {
			if so.Name != EnvironmentAllSteps && so.Name != c.Steps[i].Name {
				continue
			}
			applyStepOverride(&c.Steps[i], so)
		}
	}
	return c
}

func applyStepOverride(s *StepDefinition, o StepOverride) {
	if o.Handler != nil {
		s.Handler.Initialization = mergeInitialization(s.Handler.Initialization, o.Handler.Initialization)
	}
	if o.TimeoutSeconds != nil {
		v := *o.TimeoutSeconds
		s.TimeoutSeconds = &v
	}
	if o.Retry != nil {
		s.Retry = o.Retry.clone()
	}
}

// mergeInitialization copies the override's top-level keys over base. base is
// already a private copy; override values are deep-copied so the result shares
// nothing with the template's environments.
func mergeInitialization(base, override map[string]any) map[string]any {
	if len(override) == 0 {
		return base
	}
	if base == nil {
		base = make(map[string]any, len(override))
	}
	for k, v := range override {
		base[k] = cloneValue(v)
	}
	return base
}

// Clone returns a deep copy of t: no slice, map or pointer is shared, so the
// copy can be changed without affecting t (templates are cached and shared
// between goroutines).
func (t TaskTemplate) Clone() TaskTemplate {
	c := t
	c.Description = cloneString(t.Description)
	if t.Metadata != nil {
		m := *t.Metadata
		m.Author = cloneString(m.Author)
		m.Tags = cloneStrings(m.Tags)
		m.DocumentationURL = cloneString(m.DocumentationURL)
		m.CreatedAt = cloneString(m.CreatedAt)
		m.UpdatedAt = cloneString(m.UpdatedAt)
		c.Metadata = &m
	}
	if t.TaskHandler != nil {
		h := t.TaskHandler.clone()
		c.TaskHandler = &h
	}
	c.SystemDependencies.Secondary = cloneStrings(t.SystemDependencies.Secondary)
	if t.DomainEvents != nil {
		c.DomainEvents = make([]DomainEventDefinition, len(t.DomainEvents))
		for i, e := range t.DomainEvents {
			c.DomainEvents[i] = DomainEventDefinition{Name: e.Name, Description: cloneString(e.Description), Schema: cloneValue(e.Schema)}
		}
	}
	c.InputSchema = cloneValue(t.InputSchema)
	if t.Steps != nil {
		c.Steps = make([]StepDefinition, len(t.Steps))
		for i, s := range t.Steps {
			c.Steps[i] = s.Clone()
		}
	}
	if t.Environments != nil {
		c.Environments = make(map[string]EnvironmentOverride, len(t.Environments))
		for k, e := range t.Environments {
			c.Environments[k] = e.clone()
		}
	}
	return c
}

// Clone returns a deep copy of the step definition.
func (s StepDefinition) Clone() StepDefinition {
	c := s
	c.Description = cloneString(s.Description)
	c.Handler = s.Handler.clone()
	c.SystemDependency = cloneString(s.SystemDependency)
	c.Dependencies = cloneStrings(s.Dependencies)
	c.Retry = s.Retry.clone()
	if s.TimeoutSeconds != nil {
		v := *s.TimeoutSeconds
		c.TimeoutSeconds = &v
	}
	c.PublishesEvents = cloneStrings(s.PublishesEvents)
	return c
}

func (h HandlerDefinition) clone() HandlerDefinition {
	return HandlerDefinition{Callable: h.Callable, Initialization: cloneMap(h.Initialization)}
}

func (r RetryConfiguration) clone() RetryConfiguration {
	c := r
	if r.BackoffBaseMs != nil {
		v := *r.BackoffBaseMs
		c.BackoffBaseMs = &v
	}
	if r.MaxBackoffMs != nil {
		v := *r.MaxBackoffMs
		c.MaxBackoffMs = &v
	}
	return c
}

func (e EnvironmentOverride) clone() EnvironmentOverride {
	c := EnvironmentOverride{}
	if e.TaskHandler != nil {
		c.TaskHandler = &HandlerOverride{Initialization: cloneMap(e.TaskHandler.Initialization)}
	}
	if e.Steps != nil {
		c.Steps = make([]StepOverride, len(e.Steps))
		for i, s := range e.Steps {
			so := StepOverride{Name: s.Name}
			if s.Handler != nil {
				so.Handler = &HandlerOverride{Initialization: cloneMap(s.Handler.Initialization)}
			}
			if s.TimeoutSeconds != nil {
				v := *s.TimeoutSeconds
				so.TimeoutSeconds = &v
			}
			if s.Retry != nil {
				r := s.Retry.clone()
				so.Retry = &r
			}
			c.Steps[i] = so
		}
	}
	return c
}

func cloneString(p *string) *string {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

// cloneValue deep-copies the JSON/YAML-shaped values templates hold; scalars
// are immutable and returned as they are.
func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case map[any]any:
		c := make(map[any]any, len(x))
		for k, e := range x {
			c[k] = cloneValue(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	case []string:
		return cloneStrings(x)
	}
	return v
}
