package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of the JSON API. It is written by
// hand; the API tests hold every request and answer to it, and a test of
// the app holds it to the routes registered.
//
//go:embed openapi.json
var OpenAPI []byte

// ServeOpenAPI answers GET /v1/openapi.json with the document; no key needed.
func ServeOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
