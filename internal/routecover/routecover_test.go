package routecover

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	goleak.VerifyTestMain(m)
}

// engine has static and parameter routes that overlap, like the worker's
// /templates/cache/stats next to /templates/:ns/:name/:version.
func engine() *gin.Engine {
	e := gin.New()
	ok := func(c *gin.Context) { c.String(http.StatusOK, "real:"+c.FullPath()) }
	e.GET("/health", ok)
	e.GET("/items", ok)
	e.POST("/items", ok)
	e.GET("/items/:id", ok)
	e.GET("/items/cache/stats", ok)
	e.PATCH("/items/:id/parts/:part", ok)
	return e
}

func TestRecordMatchesLikeGin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, path string
		want               string // "" = no route
	}{
		{"static route", "GET", "/health", "GET /health"},
		{"same path other method", "POST", "/items", "POST /items"},
		{"parameter route", "GET", "/items/42", "GET /items/:id"},
		{"static wins over parameter", "GET", "/items/cache/stats", "GET /items/cache/stats"},
		{"two parameters", "PATCH", "/items/1/parts/x", "PATCH /items/:id/parts/:part"},
		{"unregistered method", "DELETE", "/items/42", ""},
		{"unknown path", "GET", "/nothing", ""},
		{"trailing slash is a redirect, not a hit", "GET", "/health/", ""},
		{"extra segment", "GET", "/items/1/parts", ""},
		{"invalid method", "BAD METHOD", "/health", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := New(engine().Routes())
			got, ok := r.Record(tc.method, tc.path)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want != "", ok)
			if tc.want != "" {
				require.Equal(t, 1, r.Hits(tc.want))
				require.NotContains(t, r.Missing(), tc.want)
			}
			require.Len(t, r.Missing(), 6-boolInt(ok), "exactly the matched route is hit")
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMissingIsSortedAndShrinksAsRoutesAreHit(t *testing.T) {
	t.Parallel()
	r := New(engine().Routes())
	require.Equal(t, []string{"GET /health", "GET /items", "GET /items/:id", "GET /items/cache/stats",
		"PATCH /items/:id/parts/:part", "POST /items"}, r.Missing())
	for _, p := range []string{"/health", "/items", "/items/1", "/items/cache/stats"} {
		r.Record("GET", p)
	}
	r.Record("PATCH", "/items/1/parts/2")
	require.Equal(t, []string{"POST /items"}, r.Missing())
	r.Record("POST", "/items")
	require.Empty(t, r.Missing())
}

func TestWrapRecordsAndServesTheRealHandler(t *testing.T) {
	t.Parallel()
	e := engine()
	r := New(e.Routes())
	srv := httptest.NewServer(r.Wrap(e))
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/items?x=1", "text/plain", strings.NewReader("payload"))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "real:/items", string(body), "the real engine answered")
	require.Equal(t, 1, r.Hits("POST /items"), "query string ignored")

	resp, err = http.Get(srv.URL + "/nothing")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Len(t, r.Missing(), 5)
}

func TestWrapLeavesTheBodyForTheHandler(t *testing.T) {
	t.Parallel()
	e := gin.New()
	e.POST("/echo", func(c *gin.Context) {
		b, _ := io.ReadAll(c.Request.Body)
		c.String(http.StatusOK, string(b))
	})
	r := New(e.Routes())
	w := httptest.NewRecorder()
	r.Wrap(e).ServeHTTP(w, httptest.NewRequest("POST", "/echo", strings.NewReader("hello")))
	require.Equal(t, "hello", w.Body.String())
	require.Equal(t, 1, r.Hits("POST /echo"))
}

func TestConcurrentRecording(t *testing.T) {
	t.Parallel()
	r := New(engine().Routes())
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				r.Record("GET", "/items/7")
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 400, r.Hits("GET /items/:id"))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		hitAll   bool
		skip     string
		whole    bool
		code     int
		wantCode int
		wantOut  string
	}{
		{"unhit routes fail a passing run", false, "", true, 0, 1,
			"FAIL: routes without a test hitting them: [POST /items]\n"},
		{"unhit routes reported on a failing run too", false, "", true, 1, 1,
			"FAIL: routes without a test hitting them: [POST /items]\n"},
		{"every route hit", true, "", true, 0, 0, ""},
		{"failing run keeps its code", true, "", true, 2, 2, ""},
		{"filtered run is not checked", false, "", false, 0, 0, ""},
		{"skipped check says why", false, "no database", true, 0, 0, "route coverage not checked: no database\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := gin.New()
			e.GET("/items/:id", func(*gin.Context) {})
			e.POST("/items", func(*gin.Context) {})
			r := New(e.Routes())
			r.Record("GET", "/items/1")
			if tc.hitAll {
				r.Record("POST", "/items")
			}
			if tc.skip != "" {
				r.SkipCheck(tc.skip)
				r.SkipCheck("a later reason")
			}
			var out bytes.Buffer
			require.Equal(t, tc.wantCode, r.verify(tc.code, &out, tc.whole))
			require.Equal(t, tc.wantOut, out.String())
		})
	}
}

func TestVerifyUsesTheTestFlags(t *testing.T) {
	t.Parallel()
	e := gin.New()
	e.GET("/never", func(*gin.Context) {})
	r := New(e.Routes())
	var out bytes.Buffer
	if WholePackage(flag.Lookup) {
		require.Equal(t, 1, r.Verify(0, &out), "this binary runs every test: the unhit route fails")
		require.Contains(t, out.String(), "[GET /never]")
	} else {
		require.Equal(t, 0, r.Verify(0, &out), "this binary runs a subset: not checked")
		require.Empty(t, out.String())
	}
}

func TestWholePackage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want bool
	}{
		{"no filter", nil, true},
		{"run filter", []string{"-test.run=TestX"}, false},
		{"skip filter", []string{"-test.skip=TestY"}, false},
		{"list", []string{"-test.list=."}, false},
		{"unrelated flags", []string{"-test.v=true", "-test.shuffle=on"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			for _, n := range []string{"test.run", "test.skip", "test.list", "test.v", "test.shuffle"} {
				fs.String(n, "", "")
			}
			require.NoError(t, fs.Parse(tc.args))
			require.Equal(t, tc.want, WholePackage(fs.Lookup))
		})
	}
	require.True(t, WholePackage(func(string) *flag.Flag { return nil }), "flags not registered: nothing filters")
}
