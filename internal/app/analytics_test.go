package app_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestSiteAnalyticsThroughThePixel sends a known set of pageviews from known
// visitors, pages, referrers and languages through the pixel, and reads the
// site's statistics as its publisher would: exact pageviews and pages, the
// visitors within 2%, and another site's figures closed to it.
func TestSiteAnalyticsThroughThePixel(t *testing.T) {
	cfg := testConfig(t)
	cfg.Demo = true
	a, out := start(t, cfg)
	admin := printedAdminKey(t, out.String())
	edge := "http://" + a.EdgeAddr()

	// 200 visitors: each views /home; odd ones also /prices twice; a third
	// came from a search engine; even ones read Russian.
	type hit struct{ visitor, page, ref, lang string }
	var hits []hit
	for i := range 200 {
		v := fmt.Sprintf("%022d", i) // the form of an id the pixel issues
		ref, lang := "", "en-GB,en;q=0.9"
		if i%3 == 0 {
			ref = "https://search.example/?q=plumber"
		}
		if i%2 == 0 {
			lang = "ru-RU,ru;q=0.9"
		}
		hits = append(hits, hit{v, "/home", ref, lang})
		if i%2 == 1 {
			hits = append(hits, hit{v, "/prices", "", lang}, hit{v, "/prices", "", lang})
		}
	}
	var wg sync.WaitGroup
	work := make(chan hit)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				q := url.Values{"site": {"demo"}, "u": {"https://localhost/pub" + h.page + "?utm_source=mail&utm_campaign=winter"}, "r": {h.ref}}
				req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI(edge + "/p.gif?" + q.Encode())
				req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
				req.Header.Set("Accept-Language", h.lang)
				req.Header.Set("Cookie", "uid="+h.visitor)
				err := fasthttp.DoTimeout(req, res, 5*time.Second)
				if err != nil || res.StatusCode() != 200 {
					t.Errorf("pixel: %v %d", err, res.StatusCode())
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(res)
			}
		}()
	}
	for _, h := range hits {
		work <- h
	}
	close(work)
	wg.Wait()

	type figures struct {
		Pageviews uint64  `json:"pageviews"`
		Visitors  *uint64 `json:"visitors"`
	}
	type report struct {
		Totals figures `json:"totals"`
		Values []struct {
			Value string `json:"value"`
			figures
		} `json:"values"`
	}
	api := "http://" + a.APIAddr() + "/v1/sites/demo/stats?by=hour&from=" + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)
	read := func(breakdown string) report {
		code, body := call(t, "GET", api+"&breakdown="+breakdown, admin, "")
		if code != 200 {
			t.Fatalf("stats: %d %s", code, body)
		}
		var r report
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	values := func(r report) string {
		var s []string
		for _, v := range r.Values {
			s = append(s, fmt.Sprintf("%s=%d", v.Value, v.Pageviews))
		}
		return strings.Join(s, " ")
	}
	var pages report
	poll(t, "every pageview counted", func() bool {
		pages = read("page")
		return pages.Totals.Pageviews == uint64(len(hits))
	})
	if got := values(pages); got != "/pub/prices=200 /pub/home=200" && got != "/pub/home=200 /pub/prices=200" {
		t.Errorf("pages: %s", got)
	}
	if v := *pages.Totals.Visitors; math.Abs(float64(v)-200)/200 > 0.02 {
		t.Errorf("visitors %d, want 200 within 2%%", v)
	}
	if got := values(read("referrer")); got != "search.example=67" {
		t.Errorf("referrers: %s", got)
	}
	if got := values(read("language")); got != "en=300 ru=100" {
		t.Errorf("languages: %s", got)
	}
	if got := values(read("utm_campaign")); got != "winter=400" {
		t.Errorf("utm_campaign: %s", got)
	}
	if got := values(read("browser")); got != "Chrome=400" {
		t.Errorf("browsers: %s", got)
	}
	t.Logf("%d pageviews through the pixel: pages %s, %d visitors of 200", len(hits), values(pages), *pages.Totals.Visitors)
}
