package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/adsyn/adsyn/internal/api"
)

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			roles, ok := op.Extensions["x-adsyn-roles"].([]any)
			if !ok {
				t.Errorf("%s %s: no x-adsyn-roles", method, path)
				continue
			}
			public := op.Security != nil && len(*op.Security) == 0
			if public != (len(roles) == 0) {
				t.Errorf("%s %s: roles %v but public=%v", method, path, roles, public)
			}
			if !public && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s %s: needs a key but documents no 401", method, path)
			}
			if strings.HasPrefix(path, "/v1/") && op.Responses.Status(http.StatusTooManyRequests) == nil {
				t.Errorf("%s %s: rate-limited but documents no 429", method, path)
			}
		}
	}
}

func TestServeOpenAPI(t *testing.T) {
	rec := httptest.NewRecorder()
	api.ServeOpenAPI(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if _, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes()); err != nil {
		t.Fatalf("served document does not load: %v", err)
	}
}
