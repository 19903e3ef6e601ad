package domain

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Template limits (contract §2, §6.1, D-k). The name and version limits are
// the column widths of tasker_named_tasks; the namespace limit keeps
// "<ns>_queue" within pgmq's 47-character queue-name limit.
const (
	MaxTemplateNameLength = 64
	MaxVersionLength      = 16
	MaxNamespaceLength    = 41
	MaxQueueNameLength    = 47
	MaxStepNameLength     = 128
	// MaxTemplateSteps and MaxStepDependencies bound a template's DAG
	// (issue 13: a 3,100-step template with 300k edges took 14 s to create
	// a task and ran at 13 steps/s). 1,000 steps with at most 100 parents
	// each is far beyond any workflow seen, and keeps creation linear and fast.
	MaxTemplateSteps    = 1000
	MaxStepDependencies = 100
	// MaxTemplateFileBytes bounds a template file read at start (a 60 MB
	// file took the worker to 420 MB RSS).
	MaxTemplateFileBytes = 4 << 20
)

var (
	templateNamePattern = regexp.MustCompile(`^[a-z0-9_]+$`)
	namespacePattern    = regexp.MustCompile(`^[a-z0-9_]{1,41}$`)
	// versionPattern is what the contract allows (§6.1: a string of at most
	// 16 characters, e.g. "1.0" or "1.0.0") narrowed to characters that are
	// safe in the URL path /v1/templates/{ns}/{name}/{version}: it starts
	// with a letter or digit; no spaces or slashes.
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._+-]*$`)
)

// TemplateValidationError lists every problem found in a template, so an
// author fixes a file in one pass. Each problem is a *ValidationError naming
// the field path (e.g. "steps[2].handler.callable"); errors.As finds them.
type TemplateValidationError struct {
	// Template is "namespace/name/version" as written in the template.
	Template string
	Problems []*ValidationError
}

// Error joins every problem into one line prefixed with the template identity.
func (e *TemplateValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return fmt.Sprintf("invalid task template %s: %s", e.Template, strings.Join(parts, "; "))
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (e *TemplateValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Messages returns one "field: reason" line per problem, the shape the worker's
// template validation endpoint reports.
func (e *TemplateValidationError) Messages() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.Error()
	}
	return out
}

// ValidateNamespace checks a namespace against D-k: `^[a-z0-9_]{1,41}$`, so
// that its queue "<ns>_queue" is a valid pgmq queue name of at most 47
// characters and its NOTIFY channel fits PostgreSQL's 63-byte limit. It
// returns a *ValidationError with Field "namespace"; callers with another
// field path (worker config, templates) may copy the Reason.
func ValidateNamespace(ns string) error {
	if reason := namespaceProblem(ns); reason != "" {
		return &ValidationError{Field: "namespace", Reason: reason}
	}
	return nil
}

func namespaceProblem(ns string) string {
	switch {
	case ns == "":
		return "must not be empty"
	case len(ns) > MaxNamespaceLength:
		return fmt.Sprintf("must be at most %d characters so that its queue name %q fits pgmq's %d-character limit (D-k); got %d",
			MaxNamespaceLength, QueueName(ns), MaxQueueNameLength, len(ns))
	case !namespacePattern.MatchString(ns):
		return fmt.Sprintf("%q must match ^[a-z0-9_]{1,41}$ (lower-case letters, digits, underscores) so that its queue name %q is a valid pgmq queue name (D-k)",
			ns, QueueName(ns))
	}
	return ""
}

// validator accumulates problems in the order they are found.
type validator struct{ problems []*ValidationError }

func (v *validator) add(field, format string, args ...any) {
	v.problems = append(v.problems, &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Validate checks the template against contract §6.1/§6.3 and D-k, and returns
// nil or a *TemplateValidationError listing every problem. It validates the
// template as given; call it on the environment-resolved template too when the
// overrides matter (their retry objects are checked here as well).
func (t TaskTemplate) Validate() error {
	v := &validator{}
	t.validateIdentity(v)
	t.validateSteps(v)
	t.validateEnvironments(v)
	if len(v.problems) == 0 {
		return nil
	}
	return &TemplateValidationError{
		Template: t.NamespaceName + "/" + t.Name + "/" + t.Version,
		Problems: v.problems,
	}
}

func (t TaskTemplate) validateIdentity(v *validator) {
	if reason := identifierProblem(t.Name, MaxTemplateNameLength, templateNamePattern,
		"must match ^[a-z0-9_]+$ (lower-case letters, digits, underscores)"); reason != "" {
		v.add("name", "%s", reason)
	}
	if reason := namespaceProblem(t.NamespaceName); reason != "" {
		v.add("namespace_name", "%s", reason)
	}
	if reason := identifierProblem(t.Version, MaxVersionLength, versionPattern,
		"must start with a letter or digit and use only letters, digits and . _ + - (e.g. \"1.0\" or \"1.0.0\"; quote it in YAML)"); reason != "" {
		v.add("version", "%s", reason)
	}
}

// identifierProblem is why a template name or version is refused, or "":
// the same three checks, in the same order, for both (not empty, at most
// maxLen bytes, matching pattern); shape says what pattern allows.
func identifierProblem(value string, maxLen int, pattern *regexp.Regexp, shape string) string {
	switch {
	case value == "":
		return "must not be empty"
	case len(value) > maxLen:
		return fmt.Sprintf("must be at most %d characters; got %d", maxLen, len(value))
	case !pattern.MatchString(value):
		return fmt.Sprintf("%q %s", value, shape)
	}
	return ""
}

func (t TaskTemplate) validateSteps(v *validator) {
	if len(t.Steps) == 0 {
		v.add("steps", "must contain at least one step")
		return
	}
	if len(t.Steps) > MaxTemplateSteps {
		v.add("steps", "must contain at most %d steps; got %d", MaxTemplateSteps, len(t.Steps))
		return
	}
	for i, s := range t.Steps {
		if len(s.Dependencies) > MaxStepDependencies {
			v.add(fmt.Sprintf("steps[%d].dependencies", i), "must list at most %d dependencies; got %d", MaxStepDependencies, len(s.Dependencies))
			return
		}
	}
	firstIndex := make(map[string]int, len(t.Steps))
	for i, s := range t.Steps {
		switch {
		case s.Name == "":
			v.add(fmt.Sprintf("steps[%d].name", i), "must not be empty")
		case utf8.RuneCountInString(s.Name) > MaxStepNameLength:
			v.add(fmt.Sprintf("steps[%d].name", i), "must be at most %d characters; got %d", MaxStepNameLength, utf8.RuneCountInString(s.Name))
		}
		if s.Name == "" {
			continue
		}
		if first, dup := firstIndex[s.Name]; dup {
			v.add(fmt.Sprintf("steps[%d].name", i), "duplicate step name %q (first defined at steps[%d])", s.Name, first)
			continue
		}
		firstIndex[s.Name] = i
	}
	for i, s := range t.Steps {
		if strings.TrimSpace(s.Handler.Callable) == "" {
			v.add(fmt.Sprintf("steps[%d].handler.callable", i), "must not be empty")
		}
		seen := make(map[string]bool, len(s.Dependencies))
		for j, d := range s.Dependencies {
			field := fmt.Sprintf("steps[%d].dependencies[%d]", i, j)
			switch _, known := firstIndex[d]; {
			case d == s.Name && d != "":
				v.add(field, "step %q depends on itself", s.Name)
			case !known:
				v.add(field, "unknown step %q", d)
			case seen[d]:
				v.add(field, "duplicate dependency %q", d)
			}
			seen[d] = true
		}
		validateRetry(v, fmt.Sprintf("steps[%d].retry", i), s.Retry)
	}
	for _, cycle := range t.dependencyCycles(firstIndex) {
		v.add("dependencies", "cycle detected: %s (a -> b: b depends on a)", strings.Join(cycle, " -> "))
	}
}

// validateRetry checks a retry object; an unset backoff (Go-built templates)
// means the default and is accepted.
func validateRetry(v *validator, field string, r RetryConfiguration) {
	if r.Limit < 0 {
		v.add(field+".limit", "must not be negative; got %d", r.Limit)
	} else if r.Limit > math.MaxInt32 {
		v.add(field+".limit", "must be at most %d; got %d", math.MaxInt32, r.Limit)
	}
	if r.Backoff != "" && !r.Backoff.Valid() {
		v.add(field+".backoff", "%s", unknownBackoffReason(r.Backoff))
	}
}

func (t TaskTemplate) validateEnvironments(v *validator) {
	envs := make([]string, 0, len(t.Environments))
	for env := range t.Environments {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		for i, so := range t.Environments[env].Steps {
			field := fmt.Sprintf("environments.%s.steps[%d]", env, i)
			if so.Name == "" {
				v.add(field+".name", "must not be empty (use a step name or %q)", EnvironmentAllSteps)
			}
			if so.Retry != nil {
				validateRetry(v, field+".retry", *so.Retry)
			}
		}
	}
}

// dependencyCycles finds the cycles of the dependency graph by depth-first
// search in template order (deterministic). Each cycle is returned in data-flow
// order (parent before dependant) and closed, e.g. [a b c a]. Self-dependencies
// and unknown names are reported elsewhere and skipped here.
func (t TaskTemplate) dependencyCycles(index map[string]int) [][]string {
	// children[p] lists the steps that depend on p, in template order.
	children := make(map[string][]string, len(t.Steps))
	for i, s := range t.Steps {
		if j, ok := index[s.Name]; !ok || j != i {
			continue // unnamed or duplicate definition
		}
		for _, d := range s.Dependencies {
			if _, known := index[d]; known && d != s.Name {
				children[d] = append(children[d], s.Name)
			}
		}
	}
	const (
		unvisited = iota
		onStack
		done
	)
	state := make(map[string]int, len(t.Steps))
	var stack []string
	var cycles [][]string
	var visit func(n string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		for _, c := range children[n] {
			switch state[c] {
			case unvisited:
				visit(c)
			case onStack:
				start := len(stack) - 1
				for stack[start] != c {
					start--
				}
				cycle := append(append([]string{}, stack[start:]...), c)
				cycles = append(cycles, cycle)
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for i, s := range t.Steps {
		if j, ok := index[s.Name]; ok && j == i && state[s.Name] == unvisited {
			visit(s.Name)
		}
	}
	return cycles
}
