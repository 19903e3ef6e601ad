package orchestrationapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/internal/routecover"
)

// routes records the routes the tests of this package hit: every test
// server's handler is wrapped with routes.Wrap (issue 7 item 4).
var routes = routecover.New(routeInventory())

// routeInventory is the route table of a server with every optional route
// enabled (metrics on), the set that must be covered.
func routeInventory() gin.RoutesInfo {
	s := web.New(web.Config{}, web.Deps{Metrics: http.NotFoundHandler()})
	return s.Handler().(*gin.Engine).Routes()
}

// serve wraps h so that the requests it serves count for route coverage and
// every response is checked against the OpenAPI document (checkResponse), as
// is every request the server accepted (checkRequest).
func serve(t *testing.T, h http.Handler) http.Handler {
	return routes.Wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The body is kept for checkRequest; the handler reads the copy.
		var body []byte
		if req.Body != nil {
			var err error
			if body, err = io.ReadAll(req.Body); err != nil {
				t.Errorf("read request body: %v", err)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkResponse(t, req, rec)
		checkRequest(t, req, body, rec.Code)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
}

// skipRouteCheckIfSkipped turns the route check off when t skips, which
// the database-backed tests do on a machine without PostgreSQL: the routes
// they would hit then stay unhit through no fault of the tests.
func skipRouteCheckIfSkipped(t *testing.T) {
	t.Cleanup(func() {
		if t.Skipped() {
			routes.SkipCheck(t.Name() + " skipped (no database?)")
		}
	})
}

// TestMain checks for leaked goroutines and, when the whole package ran,
// that every registered route was hit by some test. The route check runs
// after all tests, so -shuffle and t.Parallel cannot break it.
func TestMain(m *testing.M) {
	code := routes.Verify(m.Run(), os.Stderr)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener")); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
