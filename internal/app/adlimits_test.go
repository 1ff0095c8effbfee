package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdVisitorCeilingWired: serve's --ad-visitor-ceiling reaches the edge,
// and what it leaves uncharged, like a replayed beacon, shows on /metrics.
func TestAdVisitorCeilingWired(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	cfg.AdVisitorCeiling = 2
	a, _ := start(t, cfg)
	edge, api := "http://"+a.EdgeAddr(), "http://"+a.APIAddr()
	ad := func() (int, string) {
		req, _ := http.NewRequest("GET", edge+"/ad?site=demo&slot=side&u=visitor-1", nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Imp string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.Imp
	}
	deadline := time.Now().Add(30 * time.Second)
	code, imp := ad()
	for code != 200 { // the demo campaigns reach the index shortly
		if time.Now().After(deadline) {
			t.Fatalf("/ad: %d, no demo ad within 30s", code)
		}
		time.Sleep(50 * time.Millisecond)
		code, imp = ad()
	}
	for i := range 3 {
		if code, _ := ad(); code != 200 {
			t.Fatalf("answer %d over the ceiling: %d, want the ad", i, code)
		}
	}
	for range 2 {
		if code, _ := get(t, imp); code != 204 {
			t.Fatalf("/imp: %d", code)
		}
	}
	_, metrics := get(t, api+"/metrics")
	for _, want := range []string{`adsyn_ad_uncharged_total{reason="visitor_ceiling"} 2`, `adsyn_ad_uncharged_total{reason="replay"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
