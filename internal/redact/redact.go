// Package redact removes credentials from connection strings before they
// are printed or logged (issue 13: a config error echoed
// orchestration_api.base_url with its user:password).
package redact

import (
	"net/url"
	"regexp"
)

// Placeholder replaces the credentials.
const Placeholder = "REDACTED"

var (
	userinfo = regexp.MustCompile(`(//)[^/@\s]*@`)
	password = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
)

// URL returns s with the user and password of a URL (scheme://user:pw@host)
// and any password=… of a key=value connection string replaced by
// Placeholder. Text that is no URL at all is scrubbed by pattern, so even an
// unparseable value (the one a config error is about) leaks nothing.
func URL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User(Placeholder)
		s = u.String()
	}
	s = userinfo.ReplaceAllString(s, "${1}"+Placeholder+"@")
	return password.ReplaceAllString(s, "${1}"+Placeholder)
}
