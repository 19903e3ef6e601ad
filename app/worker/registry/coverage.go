package registry

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Missing is one gap between what a worker serves and what it can run: a
// served namespace without any template (Template empty), or a callable of a
// served template with no registered handler.
type Missing struct {
	Namespace string
	// Template is "name/version"; empty when the namespace has no template.
	Template string
	// Callable is the handler.callable without a handler.
	Callable string
}

// String names the gap in the words an operator acts on.
func (m Missing) String() string {
	if m.Template == "" {
		return fmt.Sprintf("namespace %s has no task template", m.Namespace)
	}
	return fmt.Sprintf("namespace %s template %s step handler.callable %q has no registered handler",
		m.Namespace, m.Template, m.Callable)
}

// MissingHandlers checks the loaded templates against the served
// namespaces and the handlers: every served namespace needs at least one
// template, and every callable of every served template (resolved for
// environment, as the worker runs it) a handler for which has(callable) is
// true. Templates of namespaces not served are not
// this worker's concern. The result is sorted and has one entry per
// (namespace, template, callable).
func (r *Registry) MissingHandlers(environment string, has func(callable string) bool) []Missing {
	var out []Missing
	entries := r.Templates()
	for _, ns := range r.cfg.Namespaces {
		found := false
		for _, e := range entries {
			if e.Template.NamespaceName != ns {
				continue
			}
			found = true
			t := e.Template.ResolveForEnvironment(environment)
			seen := map[string]bool{}
			for _, st := range t.Steps {
				c := st.Handler.Callable
				if seen[c] || has(c) {
					continue
				}
				seen[c] = true
				out = append(out, Missing{Namespace: ns, Template: t.Name + "/" + t.Version, Callable: c})
			}
		}
		if !found {
			out = append(out, Missing{Namespace: ns})
		}
	}
	slices.SortStableFunc(out, func(a, b Missing) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Template, b.Template), cmp.Compare(a.Callable, b.Callable))
	})
	return out
}

// MissingError is the start-up failure of worker.require_handlers: one line
// listing every gap.
type MissingError struct {
	Missing []Missing
}

// Error joins the gaps into one line.
func (e *MissingError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		parts[i] = m.String()
	}
	return "worker.require_handlers: " + strings.Join(parts, "; ") +
		" (register the handlers, fix worker.namespaces or worker.template_dir, or set worker.require_handlers = false)"
}
