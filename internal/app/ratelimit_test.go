package app_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/api/apitest"
)

// TestAPIRateLimit runs the limit as wired: a key over its rate gets 429 with
// Retry-After and passes again after it; other keys, probes and scrapes do not.
func TestAPIRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.APIRate, cfg.APIIPRate = 0.5, 0 // burst 1, a token every 2s
	a, out := start(t, cfg)
	api := "http://" + a.APIAddr()
	admin := printedAdminKey(t, out.String())
	if code, body := callAPI(t, "GET", api+"/v1/keys", admin, nil); code != 200 {
		t.Fatalf("first request: %d %s", code, body)
	}
	req := func() (int, string, string) {
		res, body := callAPIHeader(t, api+"/v1/keys", admin)
		return res.StatusCode, res.Header.Get("Retry-After"), body
	}
	code, retry, body := req()
	if code != 429 || !strings.Contains(body, `"code":"rate_limited"`) {
		t.Fatalf("second request: %d %s, want 429 rate_limited", code, body)
	}
	secs, err := strconv.Atoi(retry)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q, want whole seconds ≥ 1", retry)
	}
	// Another key has its own bucket: it is refused as unknown, not limited.
	if code, body := callAPI(t, "GET", api+"/v1/keys", "adsyn_someone_else", nil); code != 401 {
		t.Errorf("another key: %d %s, want 401", code, body)
	}
	for range 5 {
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, _ := callAPI(t, "GET", api+p, admin, nil); code != 200 {
				t.Fatalf("%s: %d, want 200 (never limited)", p, code)
			}
		}
	}
	if _, m := get(t, api+"/metrics"); !strings.Contains(m, `adsyn_api_rate_limited_total{by="key"} 1`) ||
		!strings.Contains(m, `adsyn_api_rate_limited_total{by="ip"} 0`) {
		t.Errorf("metrics lack the rate-limit counters at key 1, ip 0")
	}
	time.Sleep(time.Duration(secs) * time.Second)
	if code, _, body := req(); code != 200 {
		t.Fatalf("after Retry-After %ds: %d %s, want 200", secs, code, body)
	}
}

// callAPIHeader is a GET that keeps the answer's headers.
func callAPIHeader(t *testing.T, url, key string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}
