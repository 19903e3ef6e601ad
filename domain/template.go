package domain

import "encoding/json"

// TaskTemplate is a workflow definition loaded from YAML (contract §6). Its
// JSON form, with defaults materialised and absent values as null, is stored
// in tasker_named_tasks.configuration so reference components can read it.
type TaskTemplate struct {
	Name               string                         `json:"name" yaml:"name"`
	NamespaceName      string                         `json:"namespace_name" yaml:"namespace_name"`
	Version            string                         `json:"version" yaml:"version"`
	Description        *string                        `json:"description" yaml:"description"`
	Metadata           *TemplateMetadata              `json:"metadata" yaml:"metadata"`
	TaskHandler        *HandlerDefinition             `json:"task_handler" yaml:"task_handler"`
	SystemDependencies SystemDependencies             `json:"system_dependencies" yaml:"system_dependencies"`
	DomainEvents       []DomainEventDefinition        `json:"domain_events" yaml:"domain_events"`
	InputSchema        any                            `json:"input_schema" yaml:"input_schema"`
	Steps              []StepDefinition               `json:"steps" yaml:"steps"`
	Environments       map[string]EnvironmentOverride `json:"environments" yaml:"environments"`
}

// TemplateMetadata is informational template metadata.
type TemplateMetadata struct {
	Author           *string  `json:"author" yaml:"author"`
	Tags             []string `json:"tags" yaml:"tags"`
	DocumentationURL *string  `json:"documentation_url" yaml:"documentation_url"`
	CreatedAt        *string  `json:"created_at" yaml:"created_at"`
	UpdatedAt        *string  `json:"updated_at" yaml:"updated_at"`
}

// HandlerDefinition names the Go handler (callable) and its initialization config.
type HandlerDefinition struct {
	Callable       string         `json:"callable" yaml:"callable"`
	Initialization map[string]any `json:"initialization" yaml:"initialization"`
}

// SystemDependencies names the dependent systems steps belong to by default.
type SystemDependencies struct {
	Primary   string   `json:"primary" yaml:"primary"`
	Secondary []string `json:"secondary" yaml:"secondary"`
}

// DomainEventDefinition declares an event a template may publish.
type DomainEventDefinition struct {
	Name        string  `json:"name" yaml:"name"`
	Description *string `json:"description" yaml:"description"`
	Schema      any     `json:"schema" yaml:"schema"`
}

// StepDefinition is one step of a template.
type StepDefinition struct {
	Name             string             `json:"name" yaml:"name"`
	Description      *string            `json:"description" yaml:"description"`
	Handler          HandlerDefinition  `json:"handler" yaml:"handler"`
	SystemDependency *string            `json:"system_dependency" yaml:"system_dependency"`
	Dependencies     []string           `json:"dependencies" yaml:"dependencies"`
	Retry            RetryConfiguration `json:"retry" yaml:"retry"`
	TimeoutSeconds   *uint32            `json:"timeout_seconds" yaml:"timeout_seconds"`
	PublishesEvents  []string           `json:"publishes_events" yaml:"publishes_events"`
}

// BackoffKind is the retry backoff strategy of a step.
type BackoffKind string

// Backoff kinds accepted in templates (contract §6.1).
const (
	BackoffNone        BackoffKind = "none"
	BackoffLinear      BackoffKind = "linear"
	BackoffExponential BackoffKind = "exponential"
	BackoffFibonacci   BackoffKind = "fibonacci"
)

// RetryConfiguration is a step's retry policy. Limit is the maximum number of attempts.
type RetryConfiguration struct {
	Retryable     bool        `json:"retryable" yaml:"retryable"`
	Limit         int64       `json:"limit" yaml:"limit"`
	Backoff       BackoffKind `json:"backoff" yaml:"backoff"`
	BackoffBaseMs *uint64     `json:"backoff_base_ms" yaml:"backoff_base_ms"`
	MaxBackoffMs  *uint64     `json:"max_backoff_ms" yaml:"max_backoff_ms"`
}

// EnvironmentOverride adjusts a template for one environment (contract §6.2).
type EnvironmentOverride struct {
	TaskHandler *HandlerOverride `json:"task_handler" yaml:"task_handler"`
	Steps       []StepOverride   `json:"steps" yaml:"steps"`
}

// HandlerOverride merges initialization keys into a handler definition.
type HandlerOverride struct {
	Initialization map[string]any `json:"initialization" yaml:"initialization"`
}

// StepOverride targets one step by name, or every step with the name "ALL".
type StepOverride struct {
	Name           string              `json:"name" yaml:"name"`
	Handler        *HandlerOverride    `json:"handler" yaml:"handler"`
	TimeoutSeconds *uint32             `json:"timeout_seconds" yaml:"timeout_seconds"`
	Retry          *RetryConfiguration `json:"retry" yaml:"retry"`
}

// QueueName is the pgmq queue a namespace's step messages go to.
func QueueName(namespace string) string { return namespace + "_queue" }

// StepByName returns the step definition with the given name.
func (t *TaskTemplate) StepByName(name string) (*StepDefinition, bool) {
	for i := range t.Steps {
		if t.Steps[i].Name == name {
			return &t.Steps[i], true
		}
	}
	return nil, false
}

// compile-time use of encoding/json so the import stays with the JSON-shaped types.
var _ json.Marshaler = StepExecutionResult{}
