package orchestrationapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPIDocument is the OpenAPI 3 description of this API, served at
// /api-docs/openapi.json and rendered at /api-docs. The package tests check
// both directions against the router (every route documented, every
// documented operation routed) and validate every response the handler
// tests produce against it, status codes included, so it cannot drift from
// the handlers.
//
//go:embed openapi.json
var OpenAPIDocument []byte

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", OpenAPIDocument)
}
