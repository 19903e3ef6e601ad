// Package routecover records which routes of a gin engine the tests of a
// package hit, so the package's TestMain can fail when a registered route has
// no test (issue 7 item 4: 100% endpoint coverage of both HTTP APIs).
//
// A Recorder is built from engine.Routes() of a fully configured server (every
// optional route on). Requests are matched to routes by a mirror gin engine
// holding the same patterns, so the matching rules (static segments before
// :params, trailing-slash redirects, method mismatches) are gin's own and not
// a re-implementation that could drift from the real router.
package routecover

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/gin-gonic/gin"
)

// Recorder counts requests per registered route. It is safe for concurrent
// use, since parallel tests serve requests at the same time.
type Recorder struct {
	mirror *gin.Engine
	routes []string

	mu         sync.Mutex
	hits       map[string]int
	skipReason string
}

// Key is how a route is named in reports: "<METHOD> <gin path>", e.g.
// "GET /v1/tasks/:task_uuid".
func Key(method, path string) string { return method + " " + path }

// New returns a recorder for routes, typically engine.Routes() of a server
// configured with every optional route enabled.
func New(routes gin.RoutesInfo) *Recorder {
	r := &Recorder{mirror: gin.New(), hits: make(map[string]int, len(routes))}
	for _, ri := range routes {
		key := Key(ri.Method, ri.Path)
		r.routes = append(r.routes, key)
		r.mirror.Handle(ri.Method, ri.Path, func(c *gin.Context) {
			if p, ok := c.Request.Context().Value(matchKey{}).(*string); ok {
				*p = key
			}
			r.mark(key)
		})
	}
	sort.Strings(r.routes)
	return r
}

func (r *Recorder) mark(key string) {
	r.mu.Lock()
	r.hits[key]++
	r.mu.Unlock()
}

// Record notes a request for method and path (no query string) and reports
// the route it matched, if any. A request counts whatever the status the real
// server answered: the test hitting the route decides what it asserts.
func (r *Recorder) Record(method, path string) (string, bool) {
	req, err := http.NewRequest(method, "/", nil)
	if err != nil { // an invalid method matches no route
		return "", false
	}
	req.URL.Path = path
	return r.serve(req)
}

// serve routes req through the mirror; the mirror's handlers never read the
// body, so the real handler still sees it untouched.
func (r *Recorder) serve(req *http.Request) (string, bool) {
	var matched string
	r.mirror.ServeHTTP(discard{}, req.WithContext(withMatch(req.Context(), &matched)))
	if matched == "" {
		return "", false
	}
	return matched, true
}

// Wrap returns next with every request recorded before it is served.
func (r *Recorder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(req)
		next.ServeHTTP(w, req)
	})
}

// Hits is how many recorded requests matched the route named by key.
func (r *Recorder) Hits(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[key]
}

// Missing lists, sorted, the routes no recorded request matched.
func (r *Recorder) Missing() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, key := range r.routes {
		if r.hits[key] == 0 {
			out = append(out, key)
		}
	}
	return out
}

// SkipCheck turns Verify into a no-op that prints reason instead, for runs
// where the tests that hit the routes could not run (e.g. they skip because
// no database is available on a developer machine). The first reason wins.
func (r *Recorder) SkipCheck(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.skipReason == "" {
		r.skipReason = reason
	}
}

// Verify is for TestMain, after m.Run returned code: when the whole package
// ran (no -run, -skip or -list filter) it writes the routes without a hit to
// w and returns 1; otherwise it returns code unchanged. A filtered run is not
// checked because it hits a subset of the routes by design.
func (r *Recorder) Verify(code int, w io.Writer) int {
	return r.verify(code, w, WholePackage(flag.Lookup))
}

func (r *Recorder) verify(code int, w io.Writer, whole bool) int {
	if !whole {
		return code
	}
	r.mu.Lock()
	reason := r.skipReason
	r.mu.Unlock()
	if reason != "" {
		_, _ = fmt.Fprintf(w, "route coverage not checked: %s\n", reason)
		return code
	}
	if missing := r.Missing(); len(missing) > 0 {
		_, _ = fmt.Fprintf(w, "FAIL: routes without a test hitting them: %v\n", missing)
		return 1
	}
	return code
}

// WholePackage reports whether the test binary runs every test: none of the
// -test.run, -test.skip and -test.list flags is set. lookup is normally
// flag.Lookup.
func WholePackage(lookup func(name string) *flag.Flag) bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// matchKey is the context key under which serve passes the mirror a place
// to report the matched route.
type matchKey struct{}

func withMatch(ctx context.Context, matched *string) context.Context {
	return context.WithValue(ctx, matchKey{}, matched)
}

// discard is a ResponseWriter for the mirror engine, whose answers nobody reads.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
