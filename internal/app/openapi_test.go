package app_test

import (
	"bytes"
	"encoding/json"
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

// TestRareOperationsMatchOpenAPI calls, through the validating client, the
// operations no other API test reaches, so their answers are held to the
// document too.
func TestRareOperationsMatchOpenAPI(t *testing.T) {
	a, out := start(t, testConfig(t))
	base := "http://" + a.APIAddr()
	admin := printedAdminKey(t, out.String())
	steps := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/advertisers", `{"id":"adv1","name":"Brightwater"}`, 201},
		{"PUT", "/v1/advertisers/adv1", `{"name":"Brightwater Plumbing"}`, 200},
		{"POST", "/v1/campaigns", `{"id":"c1","advertiser":"adv1","name":"Repairs","start":"2026-01-01T00:00:00Z","cpm":2}`, 201},
		{"PUT", "/v1/creatives/cr1", `{"advertiser":"adv1","campaign":"c1","type":"image","sizes":["300x250"],"landing":"https://example.com/","image":"https://example.com/a.png"}`, 200},
		{"DELETE", "/v1/creatives/cr1", "", 204},
		{"POST", "/v1/partners", `{"id":"p1","name":"Pull partner","url":"","fields":["name"]}`, 201},
		{"POST", "/v1/partners/p1/resync", "", 202},
	}
	for _, s := range steps {
		if code, body := callAPI(t, s.method, base+s.path, admin, []byte(s.body)); code != s.want {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.path, code, body, s.want)
		}
	}

	code, body := callAPI(t, "POST", base+"/v1/users", admin, []byte(`{"name":"Anna"}`))
	var created struct {
		User struct{ ID string }
		Key  string
	}
	if err := json.Unmarshal(body, &created); code != 201 || err != nil {
		t.Fatalf("register: %d %s", code, body)
	}
	user := base + "/v1/users/" + created.User.ID
	for _, upload := range []struct {
		kind string
		data []byte
	}{{"photo", noisyPNG(t, 7)}, {"resume", []byte("%PDF-1.4\n%%EOF\n")}} {
		if code, body := callAPI(t, "PUT", user+"/"+upload.kind, created.Key, upload.data); code != 200 {
			t.Fatalf("upload %s: %d %s", upload.kind, code, body)
		}
		if code, body := callAPI(t, "DELETE", user+"/"+upload.kind, created.Key, nil); code != 200 {
			t.Fatalf("delete %s: %d %s", upload.kind, code, body)
		}
	}
}
