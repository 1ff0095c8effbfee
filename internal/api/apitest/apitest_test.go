package apitest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/adsyn/adsyn/internal/api"
	"github.com/adsyn/adsyn/internal/api/apitest"
)

// recorder keeps the failures Transport reports instead of failing the test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestTransportCatchesDrift(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			api.WriteJSON(w, http.StatusOK, map[string]string{"status": r.URL.Query().Get("say")})
		case "/readyz":
			api.WriteError(w, http.StatusTeapot, "starting", "teapot")
		case "/v1/keys":
			api.WriteJSON(w, http.StatusCreated, map[string]any{"key": "k", "principal": map[string]any{"id": "x", "role": "admin", "created": "2026-01-01T00:00:00Z"}})
		default:
			api.WriteJSON(w, http.StatusOK, map[string]string{})
		}
	}))
	defer srv.Close()
	cases := []struct {
		name, method, path, body string
		fails                    bool
	}{
		{"documented answer", "GET", "/healthz?say=ok", "", false},
		{"answer of the wrong shape", "GET", "/healthz?say=fine", "", true},
		{"undocumented status", "GET", "/readyz", "", true},
		{"route not in the document answering 200", "GET", "/v1/nowhere", "", true},
		{"request the document refuses, accepted", "POST", "/v1/keys", `{"role":"wizard"}`, true},
		{"documented request and answer", "POST", "/v1/keys", `{"role":"admin"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer k")
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res, err := apitest.Client(rec).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := len(rec.errs) > 0; got != c.fails {
				t.Errorf("reported %q; want a failure: %v", rec.errs, c.fails)
			}
		})
	}
}
