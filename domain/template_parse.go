package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Retry defaults of contract §6.1. A step without a `retry` key gets the full
// default policy; a present `retry` object only defaults retryable, limit and
// backoff, and leaves the millisecond bounds null.
const (
	DefaultRetryLimit    int64       = 3
	DefaultBackoff       BackoffKind = BackoffExponential
	DefaultBackoffBaseMs uint64      = 1000
	DefaultMaxBackoffMs  uint64      = 30000
)

// DefaultPrimarySystem is system_dependencies.primary when the template names
// none: steps without a system_dependency belong to the dependent system
// "default" (contract §6.1, §10.1).
const DefaultPrimarySystem = "default"

const allBackoffKindsPhrase = "none, linear, exponential or fibonacci"

// DefaultRetryConfiguration is the policy of a step whose template has no
// `retry` key (contract §6.1).
func DefaultRetryConfiguration() RetryConfiguration {
	base, max := DefaultBackoffBaseMs, DefaultMaxBackoffMs
	return RetryConfiguration{
		Retryable:     true,
		Limit:         DefaultRetryLimit,
		Backoff:       DefaultBackoff,
		BackoffBaseMs: &base,
		MaxBackoffMs:  &max,
	}
}

// presentRetryDefaults is the starting point of a `retry` object that is
// present in the document: omitted bounds stay null, unlike the absent case.
func presentRetryDefaults() RetryConfiguration {
	return RetryConfiguration{Retryable: true, Limit: DefaultRetryLimit, Backoff: DefaultBackoff}
}

// Valid reports whether k is one of the backoff kinds of contract §6.1.
func (k BackoffKind) Valid() bool {
	switch k {
	case BackoffNone, BackoffLinear, BackoffExponential, BackoffFibonacci:
		return true
	}
	return false
}

func unknownBackoffReason(k BackoffKind) string {
	return fmt.Sprintf("unknown backoff kind %q (want %s)", string(k), allBackoffKindsPhrase)
}

// UnmarshalYAML applies the defaults of a present `retry` object before
// decoding it, and rejects unknown backoff kinds with the offending line so a
// typo in a template is reported at load time rather than silently ignored.
func (r *RetryConfiguration) UnmarshalYAML(node *yaml.Node) error {
	type plain RetryConfiguration
	p := plain(presentRetryDefaults())
	if err := node.Decode(&p); err != nil {
		return err
	}
	if err := checkRetryKeys(node); err != nil {
		return err
	}
	if !BackoffKind(p.Backoff).Valid() {
		return fmt.Errorf("line %d: retry.backoff: %s", node.Line, unknownBackoffReason(p.Backoff))
	}
	*r = RetryConfiguration(p)
	return nil
}

// UnmarshalJSON is the JSON twin of UnmarshalYAML, used when a stored
// configuration is read back. A JSON null leaves the value untouched so the
// absent-retry defaults can be materialised afterwards.
func (r *RetryConfiguration) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	type plain RetryConfiguration
	p := plain(presentRetryDefaults())
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if !BackoffKind(p.Backoff).Valid() {
		return fmt.Errorf("retry.backoff: %s", unknownBackoffReason(p.Backoff))
	}
	*r = RetryConfiguration(p)
	return nil
}

// isUnset reports whether r was never decoded or set: the empty backoff kind
// cannot come out of a parse, so it marks the "retry key absent" case.
func (r RetryConfiguration) isUnset() bool { return r.Backoff == "" }

// ParseTemplateYAML parses a task template file (contract §6.1) strictly: an
// unknown key is a *TemplateDecodeError naming its line and the key it
// probably meant, because a misspelling such as `dependancies:` would
// otherwise be dropped and silently change the DAG (keys other producers
// add, such as loaded_from, are accepted and ignored). Every default is
// materialised, so the result serialises to the full configuration JSON of
// §6.4. It does not validate: call Validate.
func ParseTemplateYAML(data []byte) (TaskTemplate, error) {
	var t TaskTemplate
	if len(bytes.TrimSpace(data)) == 0 {
		return TaskTemplate{}, errors.New("parse task template YAML: document is empty")
	}
	if err := decodeTemplateStrict(data, &t); err != nil {
		return TaskTemplate{}, fmt.Errorf("parse task template YAML: %w", err)
	}
	return t.WithDefaults(), nil
}

// ParseTemplateJSON parses a template from its configuration JSON (as stored
// in tasker_named_tasks.configuration) with the same defaults as
// ParseTemplateYAML, so configurations written by other producers with
// omitted fields read the same way.
func ParseTemplateJSON(data []byte) (TaskTemplate, error) {
	var t TaskTemplate
	if len(bytes.TrimSpace(data)) == 0 {
		return TaskTemplate{}, errors.New("parse task template JSON: document is empty")
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return TaskTemplate{}, fmt.Errorf("parse task template JSON: %w", err)
	}
	return t.WithDefaults(), nil
}

// ConfigurationJSON is the template as stored in
// tasker_named_tasks.configuration (contract §6.4): every field present,
// defaults materialised and absent values as null, so reference components
// can deserialize it.
func (t TaskTemplate) ConfigurationJSON() (json.RawMessage, error) {
	out, err := json.Marshal(t.WithDefaults())
	if err != nil {
		return nil, fmt.Errorf("encode configuration of template %s/%s/%s: %w", t.NamespaceName, t.Name, t.Version, err)
	}
	return out, nil
}

// WithDefaults returns a deep copy of t with the defaults of contract §6.1
// filled in: empty lists and maps instead of nil, system_dependencies.primary
// "default", handler initialization {}, and the full default retry policy for
// steps whose retry was never set. Templates built in Go (e.g. in tests) get
// the same shape as parsed ones.
func (t TaskTemplate) WithDefaults() TaskTemplate {
	c := t.Clone()
	if c.SystemDependencies.Primary == "" {
		c.SystemDependencies.Primary = DefaultPrimarySystem
	}
	if c.SystemDependencies.Secondary == nil {
		c.SystemDependencies.Secondary = []string{}
	}
	if c.DomainEvents == nil {
		c.DomainEvents = []DomainEventDefinition{}
	}
	if c.Steps == nil {
		c.Steps = []StepDefinition{}
	}
	if c.Environments == nil {
		c.Environments = map[string]EnvironmentOverride{}
	}
	if c.Metadata != nil && c.Metadata.Tags == nil {
		c.Metadata.Tags = []string{}
	}
	if c.TaskHandler != nil && c.TaskHandler.Initialization == nil {
		c.TaskHandler.Initialization = map[string]any{}
	}
	for i := range c.Steps {
		s := &c.Steps[i]
		if s.Handler.Initialization == nil {
			s.Handler.Initialization = map[string]any{}
		}
		if s.Dependencies == nil {
			s.Dependencies = []string{}
		}
		if s.PublishesEvents == nil {
			s.PublishesEvents = []string{}
		}
		if s.Retry.isUnset() {
			s.Retry = DefaultRetryConfiguration()
		}
	}
	for env, o := range c.Environments {
		if o.Steps == nil {
			o.Steps = []StepOverride{}
			c.Environments[env] = o
		}
	}
	return c
}
