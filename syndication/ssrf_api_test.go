package syndication_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/syndication"
)

// POST and PATCH refuse a refused endpoint with a JSON 400 naming the
// problem, and leave the partner as it was.
func TestPartnerAPIRefusesInternalEndpoints(t *testing.T) {
	e := newEnv(t, syndication.WithPrivatePartners(false))
	keys, err := auth.NewKeys(e.ctx, e.conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	syndication.NewHandler(e.reg, e.led, keys, nil).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	admin, _, err := keys.Create(e.ctx, auth.Admin, "", "root")
	if err != nil {
		t.Fatal(err)
	}
	a := &api{env: e, t: t, keys: keys, mux: mux, srv: srv, admin: admin}
	for _, u := range []string{"http://169.254.169.254/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/",
		"http://10.0.0.1/", "http://127.0.0.1:8081/", "http://localhost:9000/", "http://2852039166/", "http://metadata.google.internal/"} {
		code, body := a.do("POST", "/v1/partners", a.admin, `{"id":"evil","url":"`+u+`","fields":["name"]}`)
		if code != 400 || !strings.Contains(body, `"code":"invalid_field"`) || !strings.Contains(body, "url host") {
			t.Errorf("POST %s: %d %s", u, code, body)
		}
	}
	if code, body := a.do("POST", "/v1/partners", a.admin, `{"id":"acme","url":"https://acme.example/hook","fields":["name"]}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body := a.do("PATCH", "/v1/partners/acme", a.admin, `{"url":"http://[::ffff:a9fe:a9fe]/latest"}`)
	if code != 400 || !strings.Contains(body, "link-local or cloud metadata") {
		t.Errorf("PATCH: %d %s", code, body)
	}
	if p, _ := e.reg.Get("acme"); p.URL != "https://acme.example/hook" {
		t.Errorf("url after a refused PATCH: %q", p.URL)
	}
}
