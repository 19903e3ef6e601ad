// Package apidocs serves a human-readable page for a service's OpenAPI
// document. Both services mount it at /api-docs next to their own
// /api-docs/openapi.json. The page and its script and stylesheet are embedded
// in the binary, so it works on an air-gapped cluster and loads nothing from
// a CDN.
package apidocs

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Routes served by Register. DocumentPath is served by each service itself,
// since the document differs per service.
const (
	PagePath     = "/api-docs"
	AssetsPath   = "/api-docs/assets"
	DocumentPath = "/api-docs/openapi.json"
)

// NonAPIPrefixes are the route prefixes that are not part of a service's
// documented API: this documentation (page, assets, the document itself) and
// the operator UI. The OpenAPI route tests of both services skip routes under
// them; every other route must be in the document.
var NonAPIPrefixes = []string{PagePath, "/ui"}

// IsNonAPIRoute reports whether path (a gin route pattern or a request path)
// is under one of NonAPIPrefixes, matching whole segments only ("/uix" is an
// API route, "/ui" and "/ui/tasks" are not).
func IsNonAPIRoute(path string) bool {
	for _, p := range NonAPIPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

//go:embed page.html.tmpl
var pageSource string

//go:embed assets
var assets embed.FS

var page = template.Must(template.New("page").Parse(pageSource))

// Register adds GET PagePath (the page, titled title) and GET
// AssetsPath/*file (its script and stylesheet) to r.
func Register(r gin.IRoutes, title string) {
	var buf bytes.Buffer
	// The page is rendered once: title is the only variable part.
	if err := page.Execute(&buf, struct{ Title string }{title}); err != nil {
		panic("apidocs: render page: " + err.Error()) // the template is embedded: a failure is a build defect
	}
	html := buf.Bytes()
	r.GET(PagePath, func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", html)
	})
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("apidocs: assets: " + err.Error())
	}
	files := http.StripPrefix(AssetsPath, http.FileServer(http.FS(sub)))
	r.GET(AssetsPath+"/*file", func(c *gin.Context) {
		if c.Param("file") == "/" { // no directory listing
			c.Status(http.StatusNotFound)
			return
		}
		files.ServeHTTP(c.Writer, c.Request)
	})
}
