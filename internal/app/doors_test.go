package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/api/apitest"
)

func adminKey(out string) string {
	key := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "adsyn_") {
			key = f
		}
	}
	return key
}

// pixelHit sends one browser-like pixel hit and returns the uid cookie set, if any.
func pixelHit(t *testing.T, edge, cookieHeader string) string {
	t.Helper()
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://" + edge + "/p.gif?site=s1&e=search&q=plumber+repair")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
	if cookieHeader != "" {
		req.Header.Set("Cookie", cookieHeader)
	}
	if err := fasthttp.DoTimeout(req, res, 5*time.Second); err != nil || res.StatusCode() != 200 {
		t.Fatalf("pixel: %v %d", err, res.StatusCode())
	}
	return string(res.Header.PeekCookie("uid"))
}

// TestCookiesAndOptOutWired runs serve with --secure-cookies and
// --partitioned-cookies: the pixel's id is Secure, SameSite=None and
// Partitioned; /optout's cookies are Secure and SameSite=None (the opt-out
// never partitioned), its page names the retention, and the pixel then
// writes no id.
func TestCookiesAndOptOutWired(t *testing.T) {
	cfg := testConfig(t)
	cfg.SecureCookies, cfg.PartitionedCookies = true, true
	a, _ := start(t, cfg)
	set := pixelHit(t, a.EdgeAddr(), "")
	for _, want := range []string{"; secure", "; SameSite=None", "; Partitioned", "; HttpOnly"} {
		if !strings.Contains(set, want) {
			t.Errorf("visitor cookie %q lacks %q", set, want)
		}
	}
	res, err := http.Get("http://" + a.EdgeAddr() + "/optout")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == "adsyn_optout" && (!c.Secure || c.SameSite != http.SameSiteNoneMode || c.Partitioned) {
			t.Errorf("opt-out cookie %+v", c)
		}
	}
	if len(res.Cookies()) != 1 {
		t.Errorf("cookies %v, want the opt-out only (no id was sent)", res.Cookies())
	}
	code, page := get(t, "http://"+a.EdgeAddr()+"/optout")
	if code != 200 || !strings.Contains(page, "30 days after each happened") {
		t.Errorf("opt-out page %d does not name the retention:\n%s", code, page)
	}
	if got := pixelHit(t, a.EdgeAddr(), "uid=AbCdEfGhIjKlMnOpQrStUv; adsyn_optout=1"); got != "" {
		t.Errorf("after the opt-out the pixel wrote %q", got)
	}
}

// TestOneOffHitLeavesNoRecord: a cookieless hit gets an id but no visitor
// record; once the browser sends the id back, the record is made.
func TestOneOffHitLeavesNoRecord(t *testing.T) {
	a, out := start(t, testConfig(t))
	admin := adminKey(out.String())
	set := pixelHit(t, a.EdgeAddr(), "")
	id, _, _ := strings.Cut(strings.TrimPrefix(set, "uid="), ";")
	if len(id) != 22 {
		t.Fatalf("no id issued: %q", set)
	}
	segments := func() int {
		req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+"/v1/visitors/"+id+"/segments", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := apitest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	poll("the builder to read the first hit", func() bool {
		_, m := get(t, "http://"+a.APIAddr()+"/metrics")
		return strings.Contains(m, `adsyn_segments_events_total{outcome="new_visitor"} 1`)
	})
	if code := segments(); code != 404 {
		t.Fatalf("a record after one cookieless hit: %d", code)
	}
	if got := pixelHit(t, a.EdgeAddr(), "uid="+id); got != "" {
		t.Fatalf("the returning id was rewritten: %q", got)
	}
	poll("the record of the returning visitor", func() bool { return segments() == 200 })
}
