// Package registry is the worker's task template registry (contract §6.3,
// §6.4): it discovers *.yml / *.yaml files under the template directory,
// parses and validates them, registers every valid template in the
// database with its full configuration JSON, keeps the worker's supported
// set in memory and creates the queues of the served namespaces.
package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DefaultTemplateDir is worker.template_dir's default (contract §4.7).
const DefaultTemplateDir = "configs/tasks"

// Config configures discovery.
type Config struct {
	// TemplateDir is walked recursively for *.yml and *.yaml files.
	TemplateDir string
	// Namespaces are the namespaces this worker serves; each gets "<ns>_queue".
	Namespaces []string
	// SkipInvalid logs each invalid template file on one line and
	// continues (contract §6.3) instead of failing Load with a *LoadError.
	SkipInvalid bool
}

// FileError is one template file that could not be loaded.
type FileError struct {
	// Path is the template file.
	Path string
	// Err is why it was not loaded (parse, validation or database error).
	Err error
}

// Error is "path: reason", or "path:line: reason" for each unknown key.
func (e FileError) Error() string {
	var de *domain.TemplateDecodeError
	if errors.As(e.Err, &de) {
		return de.InFile(e.Path)
	}
	return e.Path + ": " + e.Err.Error()
}

// LoadError lists every invalid template file; Load returns it when
// SkipInvalid is off, after registering nothing.
type LoadError struct {
	// Files are the invalid files, in discovery order.
	Files []FileError
}

// Error lists every invalid file with its reason.
func (e *LoadError) Error() string {
	parts := make([]string, len(e.Files))
	for i, f := range e.Files {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("%d invalid task template file(s): %s", len(e.Files), strings.Join(parts, "; "))
}

// Entry is a loaded template.
type Entry struct {
	// Path is the file the template came from.
	Path string
	// Template is the parsed, validated (unresolved) template.
	Template domain.TaskTemplate
	// Registered is the named task row written for it.
	Registered ports.RegisteredTemplate
}

// Report summarises a Load.
type Report struct {
	// Registered are the templates written to the database.
	Registered []Entry
	// Invalid are files that failed to parse or validate (skipped).
	Invalid []FileError
	// Rejected are valid templates the database refused (e.g. a second
	// version on a reference database, D-f); they are skipped.
	Rejected []FileError
}

type key struct{ ns, name, version string }

// Registry holds the worker's supported templates.
type Registry struct {
	cfg   Config
	store ports.TemplateStore
	queue ports.Queue
	log   *zap.Logger

	mu      sync.RWMutex
	entries map[key]Entry
}

// New validates the served namespaces (D-k) and builds a registry.
func New(cfg Config, store ports.TemplateStore, queue ports.Queue, log *zap.Logger) (*Registry, error) {
	if store == nil || queue == nil {
		return nil, errors.New("registry: template store and queue are required")
	}
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("worker.namespaces: at least one namespace is required")
	}
	for i, ns := range cfg.Namespaces {
		if err := domain.ValidateNamespace(ns); err != nil {
			var ve *domain.ValidationError
			if errors.As(err, &ve) {
				return nil, fmt.Errorf("worker.namespaces[%d]: %s", i, ve.Reason)
			}
			return nil, fmt.Errorf("worker.namespaces[%d]: %w", i, err)
		}
	}
	if cfg.TemplateDir == "" {
		cfg.TemplateDir = DefaultTemplateDir
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{cfg: cfg, store: store, queue: queue, log: log, entries: map[key]Entry{}}, nil
}

// Discover lists template files under dir: regular files ending in .yml or
// .yaml (so *.yaml.backup is ignored), sorted for deterministic loading.
func Discover(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("template directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("template directory %s: not a directory", dir)
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ext := filepath.Ext(path); ext == ".yml" || ext == ".yaml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk template directory %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, nil
}

// LoadFile parses and validates one template file.
func LoadFile(path string) (domain.TaskTemplate, error) {
	if st, err := os.Stat(path); err == nil && st.Size() > domain.MaxTemplateFileBytes {
		return domain.TaskTemplate{}, fmt.Errorf("template file is %d bytes; the limit is %d (domain.MaxTemplateFileBytes)", st.Size(), domain.MaxTemplateFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return domain.TaskTemplate{}, fmt.Errorf("read: %w", err)
	}
	t, err := domain.ParseTemplateYAML(data)
	if err != nil {
		return domain.TaskTemplate{}, err
	}
	if err := t.Validate(); err != nil {
		return domain.TaskTemplate{}, err
	}
	return t, nil
}

// Load discovers, validates and registers the templates (contract §6.3,
// §6.4). With invalid files and SkipInvalid off it returns a *LoadError and
// registers nothing. Templates the database rejects are logged and skipped.
func (r *Registry) Load(ctx context.Context) (Report, error) {
	files, err := Discover(r.cfg.TemplateDir)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	type loaded struct {
		path string
		t    domain.TaskTemplate
	}
	var valid []loaded
	seen := map[key]string{}
	for _, path := range files {
		t, err := LoadFile(path)
		if err == nil {
			k := key{t.NamespaceName, t.Name, t.Version}
			if other, dup := seen[k]; dup {
				err = fmt.Errorf("template %s/%s/%s is also defined in %s", k.ns, k.name, k.version, other)
			} else {
				seen[k] = path
			}
		}
		if err != nil {
			fe := FileError{Path: path, Err: err}
			rep.Invalid = append(rep.Invalid, fe)
			if r.cfg.SkipInvalid {
				// One line per file naming file:line and the reason.
				r.log.Warn("skipping invalid task template file: "+fe.Error(), zap.String("path", path))
			}
			continue
		}
		valid = append(valid, loaded{path, t})
	}
	if len(rep.Invalid) > 0 && !r.cfg.SkipInvalid {
		return rep, &LoadError{Files: rep.Invalid}
	}
	for _, l := range valid {
		conf, err := l.t.ConfigurationJSON()
		if err == nil {
			var reg ports.RegisteredTemplate
			reg, err = r.store.RegisterTemplate(ctx, l.t, conf)
			if err == nil {
				e := Entry{Path: l.path, Template: l.t, Registered: reg}
				r.mu.Lock()
				r.entries[key{l.t.NamespaceName, l.t.Name, l.t.Version}] = e
				r.mu.Unlock()
				rep.Registered = append(rep.Registered, e)
				continue
			}
		}
		if ctx.Err() != nil {
			return rep, fmt.Errorf("register templates: %w", ctx.Err())
		}
		rep.Rejected = append(rep.Rejected, FileError{Path: l.path, Err: err})
		r.log.Error("task template not registered; skipping it", zap.String("path", l.path),
			zap.String("template", l.t.NamespaceName+"/"+l.t.Name+"/"+l.t.Version), zap.Error(err))
	}
	return rep, nil
}

// Queues are the served step queues ("<ns>_queue"), in configured order.
func (r *Registry) Queues() []string {
	out := make([]string, len(r.cfg.Namespaces))
	for i, ns := range r.cfg.Namespaces {
		out[i] = domain.QueueName(ns)
	}
	return out
}

// Namespaces are the served namespaces.
func (r *Registry) Namespaces() []string { return append([]string(nil), r.cfg.Namespaces...) }

// EnsureQueues creates, idempotently, every served step queue and
// orchestration_step_results, where this worker sends completions (§4.1).
func (r *Registry) EnsureQueues(ctx context.Context) error {
	for _, q := range append(r.Queues(), domain.QueueStepResults) {
		if err := r.queue.CreateQueue(ctx, q); err != nil {
			return fmt.Errorf("create queue %s: %w", q, err)
		}
	}
	return nil
}

// Serves reports whether namespace is one of the served namespaces.
func (r *Registry) Serves(namespace string) bool {
	for _, ns := range r.cfg.Namespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}

// CanHandle reports whether this worker serves the namespace and loaded
// the exact (namespace, name, version) template (D-f: versions matter).
func (r *Registry) CanHandle(namespace, name, version string) bool {
	if !r.Serves(namespace) {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.entries[key{namespace, name, version}]
	return ok
}

// Templates lists the loaded templates sorted by namespace, name, version.
func (r *Registry) Templates() []Entry {
	r.mu.RLock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(x, y Entry) int {
		a, b := x.Template, y.Template
		return cmp.Or(cmp.Compare(a.NamespaceName, b.NamespaceName), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out
}
