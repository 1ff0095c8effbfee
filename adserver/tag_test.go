package adserver

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/event"
)

// TestTagJSCaching: tag.js revalidates (ETag, Last-Modified), comes gzipped
// to clients that take it, and pages that require CORP may load it.
func TestTagJSCaching(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")))
	res, body := get(t, env.base+"/tag.js")
	if res.StatusCode != 200 || body != tagJS {
		t.Fatalf("plain tag.js: %d, %d bytes", res.StatusCode, len(body))
	}
	etag, lm := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
	if etag == "" || lm == "" || res.Header.Get("Cross-Origin-Resource-Policy") != "cross-origin" || res.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", res.Header)
	}
	for _, h := range [][2]string{{"If-None-Match", etag}, {"If-Modified-Since", lm}} {
		res, body = get(t, env.base+"/tag.js", h[0], h[1])
		if res.StatusCode != http.StatusNotModified || body != "" || res.Header.Get("ETag") != etag {
			t.Errorf("%s: %d %q %v", h[0], res.StatusCode, body, res.Header)
		}
	}
	if res, _ = get(t, env.base+"/tag.js", "If-None-Match", `"other"`); res.StatusCode != 200 {
		t.Errorf("a stale ETag got %d", res.StatusCode)
	}

	// net/http would decode gzip for us: ask by hand to see the bytes.
	req, _ := http.NewRequest("GET", env.base+"/tag.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	gz, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Body.Close()
	raw, _ := io.ReadAll(gz.Body)
	if gz.Header.Get("Content-Encoding") != "gzip" || len(raw) >= len(tagJS)/2 {
		t.Fatalf("gzip: %q, %d bytes of %d", gz.Header.Get("Content-Encoding"), len(raw), len(tagJS))
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != tagJS {
		t.Fatal("the gzipped tag is not the tag")
	}
}

// TestCORPOnTheEdge: the pixel-like answers a page loads without CORS carry
// Cross-Origin-Resource-Policy, so COEP pages can load them.
func TestCORPOnTheEdge(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(allowAll))
	code, ad := env.ad(t, "site=s1&slot=side")
	if code != 200 {
		t.Fatalf("/ad: %d", code)
	}
	for _, u := range []string{env.base + "/ad?site=s1&slot=side", ad.Imp} {
		if res, _ := get(t, u); res.Header.Get("Cross-Origin-Resource-Policy") != "cross-origin" {
			t.Errorf("%s: no CORP: %v", u, res.Header)
		}
	}
}

// TestForeignPagesDoNotCount: an ad asked for site s1 (domains pub.example)
// from a page elsewhere is answered, but its impression counts for no site;
// from the site's own pages, or naming no page, it counts for s1.
func TestForeignPagesDoNotCount(t *testing.T) {
	env := newEdgeEnv(t, testSnap(camp("c1")), WithConsent(allowAll))
	cases := []struct {
		name string
		hdr  []string
		site string
	}{
		{"own origin", []string{"Origin", "https://pub.example"}, "s1"},
		{"subdomain by referer", []string{"Referer", "https://www.pub.example/a/b?x=1"}, "s1"},
		{"no page named", nil, "s1"},
		{"other origin", []string{"Origin", "https://evil.example"}, ""},
		{"lookalike", []string{"Origin", "https://notpub.example"}, ""},
		{"other referer", []string{"Referer", "http://evil.example/pub.example"}, ""},
		{"userinfo trick", []string{"Referer", "https://pub.example@evil.example/"}, ""},
		{"opaque origin", []string{"Origin", "null"}, ""},
	}
	for _, tc := range cases {
		before := len(env.pub.kinds(event.KindImpression))
		if code, _ := env.ad(t, "site=s1&slot=side", tc.hdr...); code != 200 {
			t.Fatalf("%s: %d", tc.name, code)
		}
		evs := env.pub.kinds(event.KindImpression)
		if len(evs) != before+1 {
			t.Fatalf("%s: %d impressions", tc.name, len(evs)-before)
		}
		if got := evs[len(evs)-1].Site; got != tc.site {
			t.Errorf("%s: impression counted for site %q, want %q", tc.name, got, tc.site)
		}
	}
	if got := counter(env.reg, `adsyn_foreign_page_total{door="ad"}`); got != "5" {
		t.Errorf("foreign page metric %q, want 5", got)
	}
}

func TestSitePageAllocatesNothing(t *testing.T) {
	cat := staticCatalog(Build(testSnap(), t0, nil))
	var req fasthttp.Request
	req.Header.Set("Referer", "https://www.pub.example/page")
	if n := testing.AllocsPerRun(200, func() { cat.SitePage("s1", &req.Header) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
	if !cat.SitePage("s1", &req.Header) || cat.SitePage("s1", func() *fasthttp.RequestHeader {
		var r fasthttp.Request
		r.Header.Set("Referer", "https://elsewhere.example/")
		return &r.Header
	}()) {
		t.Error("SitePage judged wrongly")
	}
}
