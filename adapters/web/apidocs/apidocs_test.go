package apidocs_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
)

func engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	apidocs.Register(e, `Tasker <test> API`)
	return e
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

var external = regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`)

func TestPageLoadsOnlyEmbeddedAssets(t *testing.T) {
	e := engine()
	res, html := get(t, e, apidocs.PagePath)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	require.Contains(t, html, "<title>Tasker &lt;test&gt; API</title>", "the title is HTML-escaped")
	require.Contains(t, html, `data-spec="api-docs/openapi.json"`)
	require.NotRegexp(t, external, html, "no CDN or other external asset")

	// Every asset the page names is served from the binary.
	refs := regexp.MustCompile(`(?:src|href)="(api-docs/assets/[^"]+)"`).FindAllStringSubmatch(html, -1)
	require.Len(t, refs, 2, "one script, one stylesheet")
	for _, ref := range refs {
		res, body := get(t, e, "/"+ref[1])
		require.Equal(t, http.StatusOK, res.StatusCode, ref[1])
		require.NotEmpty(t, body)
		require.NotContains(t, body, "http://", ref[1])
		require.NotContains(t, body, "https://", ref[1])
		switch {
		case strings.HasSuffix(ref[1], ".js"):
			require.Contains(t, res.Header.Get("Content-Type"), "javascript")
			require.Contains(t, body, `getAttribute("data-spec")`, "the script reads the document the page names")
		case strings.HasSuffix(ref[1], ".css"):
			require.Contains(t, res.Header.Get("Content-Type"), "text/css")
		}
	}
}

func TestAssets_NoListingAndUnknownIs404(t *testing.T) {
	e := engine()
	for _, p := range []string{apidocs.AssetsPath + "/", apidocs.AssetsPath + "/nope.js", apidocs.AssetsPath + "/../apidocs.go"} {
		res, _ := get(t, e, p)
		require.Equal(t, http.StatusNotFound, res.StatusCode, p)
	}
}

func TestIsNonAPIRoute(t *testing.T) {
	cases := map[string]bool{
		"/api-docs": true, "/api-docs/openapi.json": true, "/api-docs/assets/*file": true,
		"/ui": true, "/ui/tasks/:task_uuid": true,
		"/uix": false, "/api-docsx": false, "/v1/tasks": false, "/health": false, "/": false,
	}
	for path, want := range cases {
		require.Equal(t, want, apidocs.IsNonAPIRoute(path), path)
	}
}
