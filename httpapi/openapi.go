package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// OpenAPI is the HTTP contract as an OpenAPI 3.1 document. The e2e suite
// validates real responses of the running server against it.
//
//go:embed openapi.json
var OpenAPI []byte

// handleOpenAPI serves the OpenAPI document.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(OpenAPI)))
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(OpenAPI)
	}
}
