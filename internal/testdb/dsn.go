package testdb

import (
	"fmt"
	"net/url"
	"strings"
)

// lib/pq accepts URLs (postgres://…) and key=value connection strings; the helpers
// below handle both so that any DSN a developer exports works.

func isURLForm(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// databaseName returns the dbname of a DSN ("" when it names none).
func databaseName(dsn string) (string, error) {
	if isURLForm(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("malformed URL: %w", err)
		}
		if db := u.Query().Get("dbname"); db != "" {
			return db, nil
		}
		return strings.TrimPrefix(u.Path, "/"), nil
	}
	kv, err := parseKV(dsn)
	if err != nil {
		return "", err
	}
	return kv.get("dbname"), nil
}

// withDatabase returns dsn pointed at database name.
func withDatabase(dsn, name string) (string, error) {
	return setParam(dsn, "dbname", name)
}

// WithUTC returns dsn with timezone=UTC, which lib/pq passes to the server as the
// session TimeZone (contract §1 rule 3: every connection runs in UTC).
func WithUTC(dsn string) (string, error) {
	return setParam(dsn, "timezone", "UTC")
}

func setParam(dsn, key, value string) (string, error) {
	if isURLForm(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("malformed URL %s: %w", redact(dsn), err)
		}
		q := u.Query()
		if key == "dbname" {
			q.Del("dbname")
			u.Path = "/" + value
		} else {
			q.Set(key, value)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	kv, err := parseKV(dsn)
	if err != nil {
		return "", err
	}
	kv.set(key, value)
	return kv.String(), nil
}

// redact hides the password of a DSN for messages.
func redact(dsn string) string {
	if isURLForm(dsn) {
		if u, err := url.Parse(dsn); err == nil {
			return u.Redacted()
		}
		return "<malformed URL>"
	}
	kv, err := parseKV(dsn)
	if err != nil {
		return "<malformed DSN>"
	}
	if kv.get("password") != "" {
		kv.set("password", "xxxxx")
	}
	return kv.String()
}

type kvPair struct{ key, value string }

type kvDSN []kvPair

func (k kvDSN) get(key string) string {
	for _, p := range k {
		if p.key == key {
			return p.value
		}
	}
	return ""
}

func (k *kvDSN) set(key, value string) {
	for i := range *k {
		if (*k)[i].key == key {
			(*k)[i].value = value
			return
		}
	}
	*k = append(*k, kvPair{key, value})
}

func (k kvDSN) String() string {
	parts := make([]string, 0, len(k))
	for _, p := range k {
		v := p.value
		if v == "" || strings.ContainsAny(v, ` '\`) {
			v = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
		}
		parts = append(parts, p.key+"="+v)
	}
	return strings.Join(parts, " ")
}

// parseKV parses "host=h dbname='my db'" as libpq does (quoted values, \ escapes).
func parseKV(s string) (kvDSN, error) {
	var out kvDSN
	r := []rune(s)
	i := 0
	skipSpace := func() {
		for i < len(r) && (r[i] == ' ' || r[i] == '\t' || r[i] == '\n') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(r) {
			return out, nil
		}
		start := i
		for i < len(r) && r[i] != '=' && r[i] != ' ' {
			i++
		}
		key := string(r[start:i])
		skipSpace()
		if i >= len(r) || r[i] != '=' || key == "" {
			return nil, fmt.Errorf("malformed connection string near %q", key)
		}
		i++
		skipSpace()
		var val strings.Builder
		if i < len(r) && r[i] == '\'' {
			i++
			closed := false
			for i < len(r) {
				if r[i] == '\\' && i+1 < len(r) {
					val.WriteRune(r[i+1])
					i += 2
					continue
				}
				if r[i] == '\'' {
					closed = true
					i++
					break
				}
				val.WriteRune(r[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("malformed connection string: unterminated quote for %q", key)
			}
		} else {
			for i < len(r) && r[i] != ' ' {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				val.WriteRune(r[i])
				i++
			}
		}
		out = append(out, kvPair{key, val.String()})
	}
}
