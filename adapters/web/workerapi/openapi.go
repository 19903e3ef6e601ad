package workerapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPIDocument is the OpenAPI 3 description of this API, served at
// /api-docs/openapi.json. A test validates real responses against it, so
// it cannot drift from the handlers.
//
//go:embed openapi.json
var OpenAPIDocument []byte

func (s *Server) handleOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", OpenAPIDocument)
}
