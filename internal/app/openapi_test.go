package app_test

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/api/apitest"
)

// TestRoutesMatchOpenAPI walks the routes a process with every role (and the
// demo) registers and holds them to the OpenAPI document, both ways.
func TestRoutesMatchOpenAPI(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	a, _ := start(t, cfg)

	doc, err := apitest.Document()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, p := range a.APIRoutes() {
		if slices.Contains(apitest.NotTheAPI, p) {
			continue
		}
		if !strings.Contains(p, " ") {
			t.Errorf("route %q has no method: give it one and document it", p)
			continue
		}
		registered[p] = true
		if !documented[p] {
			t.Errorf("route %q is not in the OpenAPI document (internal/api/openapi.json)", p)
		}
	}
	if len(registered) < 50 {
		t.Fatalf("only %d routes registered: the walk missed some", len(registered))
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("the OpenAPI document has %q, which no route serves", op)
		}
	}

	// The document is served as it is kept, without a key.
	res, err := apitest.Client(t).Get("http://" + a.APIAddr() + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Equal(body, api.OpenAPI) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes; want 200 and the document (%d bytes)", res.StatusCode, len(body), len(api.OpenAPI))
	}
}
