package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckPaths(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := CheckPaths(ok)
	for _, c := range []struct {
		path string
		want int
	}{
		{"/v1/sites/s1", 204},
		{"/v1/users/u_1e36d6e90a85f0431905/recipients", 204},
		{"/v1/visitors/Pql3iwFJ8w52JVf6vxTwGg/segments", 204},
		{"/v1/openapi.json", 204},
		{"/dashboard/app.js", 204},                      // not the API's ids
		{"/v1/sites/" + strings.Repeat("a", 128), 204},  // the longest id
		{"/v1/sites/" + strings.Repeat("a", 129), 400},  // one more
		{"/v1/sites/" + strings.Repeat("a", 4100), 400}, // "Maximum Control Line Exceeded" before
		{"/v1/users/*/recipients", 400},
		{"/v1/users/%2A/recipients", 400},
		{"/v1/campaigns/a%3Eb", 400},
		{"/v1/campaigns/a%20b", 400},
		{"/v1/campaigns/a%00b", 400},
		{"/v1/campaigns/%C3%A9", 400},
	} {
		r := httptest.NewRequest("GET", "http://api"+c.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%.60s: %d, want %d", c.path, w.Code, c.want)
			continue
		}
		if c.want == 400 {
			var b ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code != "invalid_path" {
				t.Errorf("%.60s: body %q", c.path, w.Body.String())
			}
		}
	}
}

func FuzzCheckPaths(f *testing.F) {
	for _, s := range []string{"/v1/sites/s1", "/v1/users/*/recipients", "/v1/a%00b", "/x"} {
		f.Add(s)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := CheckPaths(ok)
	f.Fuzz(func(t *testing.T, path string) {
		r := httptest.NewRequest("GET", "http://api/", nil)
		r.URL.Path = path
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == 204 && strings.HasPrefix(path, "/v1/") && strings.ContainsAny(path, "*> \x00\t\r\n") {
			t.Fatalf("%q passed", path)
		}
	})
}
