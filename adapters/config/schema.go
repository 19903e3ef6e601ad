package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// leafKind is the type of a configuration value as files and env vars see it.
type leafKind int

const (
	kindString leafKind = iota
	kindBool
	kindInt
	kindFloat
	kindStringList
)

func (k leafKind) describe() string {
	switch k {
	case kindBool:
		return "a boolean"
	case kindInt:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindStringList:
		return "a list of strings"
	default:
		return "a string"
	}
}

// schema is derived once from the koanf tags of Config, so the set of known
// keys can never drift from the struct.
type schema struct {
	leaves map[string]leafKind // "pgmq.batch_size" → kindInt
	tables map[string]bool     // "orchestration.auth" → true
}

var configSchema = buildSchema(reflect.TypeFor[Config]())

func buildSchema(t reflect.Type) schema {
	s := schema{leaves: map[string]leafKind{}, tables: map[string]bool{}}
	s.walk(t, "")
	return s
}

func (s schema) walk(t reflect.Type, prefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			s.tables[key] = true
			s.walk(f.Type, key)
		case reflect.Bool:
			s.leaves[key] = kindBool
		case reflect.Int:
			s.leaves[key] = kindInt
		case reflect.Float64:
			s.leaves[key] = kindFloat
		case reflect.String:
			s.leaves[key] = kindString
		case reflect.Slice:
			if f.Type.Elem().Kind() != reflect.String {
				panic(fmt.Sprintf("config: unsupported slice type for %s", key))
			}
			s.leaves[key] = kindStringList
		default:
			panic(fmt.Sprintf("config: unsupported field type %s for %s", f.Type, key))
		}
	}
}

// checkMap reports unknown keys and values of the wrong type in one parsed
// layer (a TOML file), naming the layer so the operator knows which file to
// fix. prefix is the key path of m.
func (s schema) checkMap(source, prefix string, m map[string]any) []Problem {
	var problems []Problem
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		v := m[k]
		if strings.Contains(k, ".") {
			// A quoted dotted key would be merged as one literal key and
			// never reach the struct; write a table or a bare dotted key.
			problems = append(problems, Problem{Source: source, Key: key, Reason: "quoted keys containing '.' are not supported"})
			continue
		}
		if s.tables[key] {
			sub, ok := v.(map[string]any)
			if !ok {
				problems = append(problems, Problem{Source: source, Key: key, Reason: "must be a table"})
				continue
			}
			problems = append(problems, s.checkMap(source, key, sub)...)
			continue
		}
		kind, ok := s.leaves[key]
		if !ok {
			problems = append(problems, Problem{Source: source, Key: key, Reason: "unknown key"})
			continue
		}
		if !kind.accepts(v) {
			problems = append(problems, Problem{Source: source, Key: key,
				Reason: fmt.Sprintf("must be %s, got %v", kind.describe(), describeValue(v))})
		}
	}
	return problems
}

// accepts reports whether a TOML-decoded value fits the kind. Floats are
// refused for integer keys (mapstructure would silently truncate 10.5 to 10).
func (k leafKind) accepts(v any) bool {
	switch k {
	case kindString:
		_, ok := v.(string)
		return ok
	case kindBool:
		_, ok := v.(bool)
		return ok
	case kindInt:
		switch n := v.(type) {
		case int64:
			return n >= math.MinInt && n <= math.MaxInt
		case int:
			return true
		}
		return false
	case kindFloat:
		switch v.(type) {
		case float64, int64, int:
			return true
		}
		return false
	case kindStringList:
		switch list := v.(type) {
		case []string:
			return true
		case []any:
			for _, e := range list {
				if _, ok := e.(string); !ok {
					return false
				}
			}
			return true
		}
		return false
	}
	return false
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

// toMap renders a Config as the nested map koanf merges, keyed by koanf tag.
// It is how the built-in defaults become the first layer.
func toMap(v reflect.Value) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Struct:
			out[tag] = toMap(fv)
		case reflect.Slice:
			list := make([]any, fv.Len())
			for j := range list {
				list[j] = fv.Index(j).Interface()
			}
			out[tag] = list
		default:
			out[tag] = fv.Interface()
		}
	}
	return out
}
