package workerapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzWorkerRequest sends arbitrary methods, paths, queries and bodies to
// the worker API: no answer is a 5xx and every error is an ErrorResponse
// (issue 13: a %00 in a template route used to be a 500).
func FuzzWorkerRequest(f *testing.F) {
	for _, seed := range [][3]string{
		{"GET", "/templates/examples/linear_workflow/1.0.0", ""},
		{"POST", "/templates/examples/%00/1.0.0/validate", ""},
		{"POST", "/templates/examples/a/1.0.0/refresh", "{}"},
		{"GET", "/templates?namespace=%ff&include_cache_stats=x", ""},
		{"DELETE", "/templates/cache", ""},
		{"GET", "/status/namespaces", ""},
		{"PUT", "/handlers", "x"},
	} {
		f.Add(seed[0], seed[1], []byte(seed[2]))
	}
	e := setup(f)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if len(method) == 0 || len(method) > 8 || len(target) == 0 || target[0] != '/' {
			return
		}
		req, err := http.NewRequest(method, "http://worker"+target, bytes.NewReader(body))
		if err != nil {
			return // not an HTTP request a client could send
		}
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		probe := w.Code == http.StatusServiceUnavailable && strings.HasPrefix(req.URL.Path, "/health")
		require.True(t, w.Code < 500 || probe, "%s %s → %d %s", method, target, w.Code, w.Body.String())
		if w.Code >= 400 {
			var er ErrorResponse
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &er), w.Body.String())
			require.NotEmpty(t, er.Error)
		}
	})
}
