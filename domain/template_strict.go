package domain

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ignoredTemplateKeys are top-level keys other producers write into
// template files that carry no meaning here (contract §6.1 names
// loaded_from); strict decoding accepts and drops them.
var ignoredTemplateKeys = map[string]bool{"loaded_from": true}

// TemplateKeyProblem is one key of a template file that strict decoding
// rejected, with its line.
type TemplateKeyProblem struct {
	// Line is the 1-based line of the key in the file.
	Line int
	// Key is the key as written.
	Key string
	// In names the object the key was found in ("the template", "a step", …).
	In string
	// Suggestion is the known key it most likely meant, or "".
	Suggestion string
}

// String is "line N: unknown key "k" in a step (did you mean "dependencies"?)".
func (p TemplateKeyProblem) String() string {
	s := fmt.Sprintf("unknown key %q in %s", p.Key, p.In)
	if p.Suggestion != "" {
		s += fmt.Sprintf(" (did you mean %q?)", p.Suggestion)
	}
	return s
}

// TemplateDecodeError lists the unknown keys (and other type mismatches) of
// a template file. A misspelled key (`dependancies:`) would otherwise be
// dropped silently and change the workflow, so strict decoding reports it.
type TemplateDecodeError struct {
	// Problems are the unknown keys, by line.
	Problems []TemplateKeyProblem
	// Other are decoding errors that are not unknown keys, as yaml.v3 words them.
	Other []string
}

// Error lists the problems as "line N: …" joined by "; ".
func (e *TemplateDecodeError) Error() string { return e.format("line ", ": ") }

// InFile lists the problems as "FILE:N: …" joined by "; ", the form
// compilers use, so editors can jump to the line.
func (e *TemplateDecodeError) InFile(path string) string { return e.format(path+":", ": ") }

func (e *TemplateDecodeError) format(prefix, sep string) string {
	parts := make([]string, 0, len(e.Problems)+len(e.Other))
	for _, p := range e.Problems {
		parts = append(parts, prefix+strconv.Itoa(p.Line)+sep+p.String())
	}
	for _, o := range e.Other {
		if m := yamlLine.FindStringSubmatch(o); m != nil && strings.HasSuffix(prefix, ":") {
			parts = append(parts, prefix+m[1]+sep+m[2])
			continue
		}
		parts = append(parts, o)
	}
	return strings.Join(parts, "; ")
}

var (
	yamlLine         = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
)

// decodeTemplateStrict decodes data into t rejecting unknown keys.
func decodeTemplateStrict(data []byte, t *TaskTemplate) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	err := dec.Decode(t)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	out := &TemplateDecodeError{}
	for _, msg := range te.Errors {
		m := yamlUnknownField.FindStringSubmatch(msg)
		if m == nil {
			out.Other = append(out.Other, msg)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		if m[3] == "domain.TaskTemplate" && ignoredTemplateKeys[m[2]] {
			continue
		}
		in, known := describeTemplateType(m[3])
		out.Problems = append(out.Problems, TemplateKeyProblem{Line: line, Key: m[2], In: in, Suggestion: closestKey(m[2], known)})
	}
	if len(out.Problems) == 0 && len(out.Other) == 0 {
		// Only ignored keys: decode again leniently to fill every field.
		return yaml.Unmarshal(data, t)
	}
	sort.SliceStable(out.Problems, func(i, j int) bool { return out.Problems[i].Line < out.Problems[j].Line })
	return out
}

// templateTypes maps the Go types of a template to how messages name them.
var templateTypes = map[string]struct {
	in string
	t  reflect.Type
}{
	"domain.TaskTemplate":          {"the template", reflect.TypeFor[TaskTemplate]()},
	"domain.TemplateMetadata":      {"metadata", reflect.TypeFor[TemplateMetadata]()},
	"domain.HandlerDefinition":     {"a handler", reflect.TypeFor[HandlerDefinition]()},
	"domain.SystemDependencies":    {"system_dependencies", reflect.TypeFor[SystemDependencies]()},
	"domain.DomainEventDefinition": {"a domain event", reflect.TypeFor[DomainEventDefinition]()},
	"domain.StepDefinition":        {"a step", reflect.TypeFor[StepDefinition]()},
	"domain.RetryConfiguration":    {"retry", reflect.TypeFor[RetryConfiguration]()},
	"domain.EnvironmentOverride":   {"an environment", reflect.TypeFor[EnvironmentOverride]()},
	"domain.HandlerOverride":       {"a handler override", reflect.TypeFor[HandlerOverride]()},
	"domain.StepOverride":          {"a step override", reflect.TypeFor[StepOverride]()},
}

func describeTemplateType(goType string) (string, []string) {
	tt, ok := templateTypes[goType]
	if !ok {
		return goType, nil
	}
	return tt.in, yamlKeys(tt.t)
}

// yamlKeys lists the yaml keys of a struct type.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// closestKey returns the known key within edit distance 3 of key (the
// closest; ties by order), or "".
func closestKey(key string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkRetryKeys is strict decoding for the retry object, whose custom
// UnmarshalYAML decodes through node.Decode (which does not inherit
// KnownFields): unknown keys come back as a *yaml.TypeError in yaml.v3's
// own wording so they join the others.
func checkRetryKeys(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return nil
	}
	known := map[string]bool{}
	for _, k := range yamlKeys(reflect.TypeFor[RetryConfiguration]()) {
		known[k] = true
	}
	var errs []string
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !known[k.Value] {
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type domain.RetryConfiguration", k.Line, k.Value))
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}
