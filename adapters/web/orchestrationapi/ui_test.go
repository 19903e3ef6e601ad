package orchestrationapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
)

// fakeUI is a dashboard with one page.
type fakeUI struct{}

func (fakeUI) Register(g *gin.RouterGroup) {
	g.GET("/tasks", func(c *gin.Context) { c.String(http.StatusOK, "tasks page") })
	g.GET("/static/*filepath", func(c *gin.Context) { c.String(http.StatusOK, "css") })
}

// The dashboard is mounted at /ui and, with auth on, every /ui route needs
// a token like the API's protected routes; with auth off it is open.
func TestDashboardMountedBehindAuth(t *testing.T) {
	t.Parallel()
	do := func(h http.Handler, path, token string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	deps := web.Deps{Tasks: &fakeTasks{running: true}, Templates: fakeTemplates{}, DB: pingFunc(nil), UI: fakeUI{}, Log: zap.NewNop()}
	open := web.New(web.Config{}, deps).Handler()
	require.Equal(t, http.StatusOK, do(open, "/ui/tasks", ""))

	locked := web.New(web.Config{Verifier: middleware.StaticTokens{"s3cret"}}, deps).Handler()
	require.Equal(t, http.StatusUnauthorized, do(locked, "/ui/tasks", ""))
	require.Equal(t, http.StatusUnauthorized, do(locked, "/ui/static/style.css", ""))
	require.Equal(t, http.StatusUnauthorized, do(locked, "/ui/tasks", "wrong"))
	require.Equal(t, http.StatusOK, do(locked, "/ui/tasks", "s3cret"))
	require.Equal(t, http.StatusOK, do(locked, "/health", ""), "probes stay open")

	noUI := deps
	noUI.UI = nil
	require.Equal(t, http.StatusNotFound, do(web.New(web.Config{}, noUI).Handler(), "/ui/tasks", ""), "disabled: not mounted")
}
