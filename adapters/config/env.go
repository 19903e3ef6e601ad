package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/knadh/koanf/providers/env/v2"
)

// envLayer turns environment variables into a config map, following the
// rule TASKER_<SECTION>__<KEY>[__<KEY>…]: the double underscore separates
// nesting levels and everything is lower-cased, so
// TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__FAILURE_THRESHOLD is
// orchestration_api.circuit_breaker.failure_threshold.
//
// Decisions (documented in docs/configuration.md):
//   - A TASKER_ variable without "__" is not a config key (TASKER_ENV,
//     TASKER_CONFIG_DIR, TASKER_TEST_DATABASE_URL) and is ignored.
//   - A TASKER_ variable with "__" that names no key is an error: a typo
//     such as TASKER_WORKER__NAMESPACE must not be silently ignored.
//   - An empty value means "not set", because deployment templates often
//     render absent values as FOO= ; clear a list in a file instead.
//   - List keys take comma-separated values; blanks around items are
//     trimmed and empty items dropped.
//   - Values are converted to the key's type here, so "abc" for an integer
//     key is reported with the variable's name.
func envLayer(environ []string) (map[string]any, []Problem) {
	var problems []Problem
	provider := env.Provider(".", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, raw string) (string, any) {
			key, value, problem := envEntry(name, raw)
			if problem != nil {
				problems = append(problems, *problem)
				return "", nil
			}
			return key, value
		},
	})
	m, err := provider.Read()
	if err != nil {
		// Read only fails for providers without an environ; keep the error visible.
		problems = append(problems, Problem{Source: "environment", Key: "-", Reason: err.Error()})
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Source < problems[j].Source })
	return m, problems
}

// databaseURLLayer maps DATABASE_URL to database.url. It is a separate layer
// below the TASKER_ layer so TASKER_DATABASE__URL wins deterministically.
func databaseURLLayer(environ []string) map[string]any {
	if v := lookupEnv(environ, EnvVarDatabaseURL); v != "" {
		return map[string]any{"database": map[string]any{"url": v}}
	}
	return map[string]any{}
}

// envEntry maps one TASKER_ variable to (key, typed value). An empty key
// with a nil problem means "ignore this variable".
func envEntry(name, raw string) (string, any, *Problem) {
	rest := strings.TrimPrefix(name, envPrefix)
	if !strings.Contains(rest, envNestingSeparator) || raw == "" {
		return "", nil, nil
	}
	parts := strings.Split(rest, envNestingSeparator)
	for _, p := range parts {
		if p == "" || strings.HasPrefix(p, "_") || strings.HasSuffix(p, "_") {
			return "", nil, &Problem{Source: name, Key: strings.ToLower(rest),
				Reason: "malformed name: use TASKER_<SECTION>__<KEY> with exactly two underscores between levels"}
		}
	}
	key := strings.ToLower(strings.Join(parts, "."))
	if configSchema.tables[key] {
		return "", nil, &Problem{Source: name, Key: key, Reason: "is a table, set one of its keys (e.g. " + name + "__<KEY>)"}
	}
	kind, ok := configSchema.leaves[key]
	if !ok {
		return "", nil, &Problem{Source: name, Key: key, Reason: "unknown key"}
	}
	value, err := convertEnvValue(kind, raw)
	if err != nil {
		return "", nil, &Problem{Source: name, Key: key, Reason: "must be " + kind.describe() + ", got " + strconv.Quote(raw)}
	}
	return key, value, nil
}

func convertEnvValue(kind leafKind, raw string) (any, error) {
	s := strings.TrimSpace(raw)
	switch kind {
	case kindBool:
		return strconv.ParseBool(s)
	case kindInt:
		return strconv.Atoi(s)
	case kindFloat:
		return strconv.ParseFloat(s, 64)
	case kindStringList:
		items := []string{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	default:
		return raw, nil
	}
}

// lookupEnv returns the value of name in environ ("" when unset). The first
// occurrence wins, as with os.Getenv on a duplicated entry.
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
