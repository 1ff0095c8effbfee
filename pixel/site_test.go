package pixel_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/pixel"
)

// TestForeignPageCountsForNoSite: a hit whose page the site does not own
// (SitePage says so; adserver.Catalog.SitePage decides in serve) is stored
// for no site, and counted on /metrics. Every answer carries CORP.
func TestForeignPageCountsForNoSite(t *testing.T) {
	reg := metrics.NewRegistry()
	e := startEdge(t, pixel.Options{Metrics: reg, SitePage: func(site string, hd *fasthttp.RequestHeader) bool {
		return site != "s1" || !strings.HasPrefix(string(hd.Referer()), "https://evil.example/")
	}})
	for _, h := range []hit{
		{query: "site=s1&u=https://pub.example/a", headers: map[string]string{"Referer": "https://pub.example/a"}},
		{query: "site=s1&u=https://pub.example/b", headers: map[string]string{"Referer": "https://evil.example/b"}},
		{method: "POST", body: "site=s1&u=https://pub.example/c", headers: map[string]string{"Referer": "https://evil.example/c"}},
	} {
		if res := e.do(t, h); res.Header.Peek("Cross-Origin-Resource-Policy") == nil {
			t.Errorf("%+v: no CORP header", h)
		}
	}
	sites := map[string]int{} // partitions differ: the stream's order is not the hits'
	for _, ev := range e.events(t) {
		sites[ev.Site]++
	}
	if sites["s1"] != 1 || sites[""] != 2 || len(sites) != 2 {
		t.Errorf("sites %v, want s1 for the first hit only", sites)
	}
	var b strings.Builder
	reg.WriteText(&b)
	if !strings.Contains(b.String(), `adsyn_foreign_page_total{door="pixel"} 2`) {
		t.Errorf("metrics:\n%s", b.String())
	}
}
