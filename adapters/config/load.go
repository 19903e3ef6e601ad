package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"strings"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
)

// LoadOptions tells Load where to look. The zero value loads from the
// process environment and DefaultConfigDir, falling back to the embedded
// copy of the default files.
type LoadOptions struct {
	// ConfigDir holds base/ and environments/. Empty means TASKER_CONFIG_DIR,
	// else DefaultConfigDir. A directory named here or in TASKER_CONFIG_DIR
	// must exist; only the implicit default falls back to Embedded, so a
	// typo in an explicit path fails instead of silently using defaults.
	ConfigDir string
	// Environment overrides environment detection (DetectEnvironment).
	Environment string
	// Environ replaces os.Environ(), so tests need not mutate the process
	// environment (and can run in parallel).
	Environ []string
	// Embedded is the fallback file tree (with base/ and environments/) used
	// when the implicit config dir does not exist, e.g. a binary started from
	// another working directory. Nil means EmbeddedFiles().
	Embedded fs.FS
}

// environmentVariables are consulted in this order (contract §4.7).
var environmentVariables = []string{EnvVarEnvironment, "RAILS_ENV", "RACK_ENV", "APP_ENV"}

// DetectEnvironment picks the environment from TASKER_ENV, else RAILS_ENV,
// RACK_ENV, APP_ENV, else development; lower-cased. An empty variable counts
// as unset. The result must be development, test or production.
func DetectEnvironment(environ []string) (string, error) {
	for _, name := range environmentVariables {
		if v := lookupEnv(environ, name); v != "" {
			return checkEnvironment(v, name)
		}
	}
	return EnvDevelopment, nil
}

func checkEnvironment(value, from string) (string, error) {
	env := strings.ToLower(strings.TrimSpace(value))
	switch env {
	case EnvDevelopment, EnvTest, EnvProduction:
		return env, nil
	}
	return "", fmt.Errorf("environment %q (from %s): %w", value, from, ErrUnknownEnvironment)
}

// Load builds the configuration: built-in defaults < base/*.toml (sorted by
// name) < environments/<env>/*.toml < DATABASE_URL < TASKER_* variables.
// Tables merge key by key; scalars and arrays replace. Unknown keys and
// values of the wrong type are rejected with their file or variable; the
// merged result is then checked by Validate. All problems are returned
// together in a *ValidationError. Service-specific requirements (database
// URL, namespaces) are checked by ValidateWorker / ValidateOrchestration.
func Load(opts LoadOptions) (*Config, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	environment, err := resolveEnvironment(opts.Environment, environ)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	files, source, err := resolveFiles(opts, environ)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(toMap(reflect.ValueOf(Defaults(environment))), ""), nil); err != nil {
		return nil, fmt.Errorf("load config: built-in defaults: %w", err)
	}
	var problems []Problem
	for _, dir := range []string{"base", path.Join("environments", environment)} {
		p, err := loadDir(k, files, source, dir, dir == "base")
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		problems = append(problems, p...)
	}
	envMap, envProblems := envLayer(environ)
	problems = append(problems, envProblems...)
	if err := problemsError(problems); err != nil {
		return nil, err
	}
	for _, layer := range []map[string]any{databaseURLLayer(environ), envMap} {
		if err := k.Load(confmap.Provider(layer, ""), nil); err != nil {
			return nil, fmt.Errorf("load config: environment: %w", err)
		}
	}

	cfg := &Config{}
	if err := k.UnmarshalWithConf("", cfg, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return nil, fmt.Errorf("load config: decode: %w", err)
	}
	cfg.Environment = environment
	cfg.Source = source
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func resolveEnvironment(explicit string, environ []string) (string, error) {
	if explicit != "" {
		return checkEnvironment(explicit, "LoadOptions.Environment")
	}
	return DetectEnvironment(environ)
}

// resolveFiles returns the file tree to read and a name for it.
func resolveFiles(opts LoadOptions, environ []string) (fs.FS, string, error) {
	dir, explicit := opts.ConfigDir, opts.ConfigDir != ""
	if !explicit {
		if v := lookupEnv(environ, EnvVarConfigDir); v != "" {
			dir, explicit = v, true
		}
	}
	if dir == "" {
		dir = DefaultConfigDir
	}
	info, err := os.Stat(dir)
	switch {
	case err == nil && info.IsDir():
		return os.DirFS(dir), dir, nil
	case err == nil:
		return nil, "", fmt.Errorf("config dir %s: not a directory", dir)
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("config dir %s: %w", dir, err)
	}
	embedded := opts.Embedded
	if embedded == nil {
		embedded = EmbeddedFiles()
	}
	return embedded, embeddedSourceName, nil
}

// loadDir merges every *.toml file of dir (sorted by name; fs.ReadDir
// sorts) into k. A missing environment directory simply has no overrides;
// a missing base directory means the config dir is wrong.
func loadDir(k *koanf.Koanf, files fs.FS, source, dir string, required bool) ([]Problem, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", path.Join(source, dir), err)
	}
	var problems []Problem
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".toml" {
			continue
		}
		name := path.Join(dir, e.Name())
		display := path.Join(source, name)
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", display, err)
		}
		m, err := toml.Parser().Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", display, describeTOMLError(err))
		}
		if p := configSchema.checkMap(display, "", m); len(p) > 0 {
			problems = append(problems, p...)
			continue
		}
		if err := k.Load(confmap.Provider(m, ""), nil); err != nil {
			return nil, fmt.Errorf("merge %s: %w", display, err)
		}
	}
	return problems, nil
}

// describeTOMLError adds the line and column go-toml knows but does not
// put in its message.
func describeTOMLError(err error) error {
	var derr *gotoml.DecodeError
	if errors.As(err, &derr) {
		row, col := derr.Position()
		return fmt.Errorf("line %d column %d: %w", row, col, err)
	}
	return err
}
