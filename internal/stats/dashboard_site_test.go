package stats

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/adsyn/adsyn/internal/browsertest"
)

// A publisher's site view in headless Chromium: its audience's cards,
// charts and top values agree with the API, on a desktop and on a phone.
func TestDashboardSiteInChromium(t *testing.T) {
	w := newWorld(t, false)
	base := time.Now().UTC().Add(-time.Hour)
	publishEvents(t, w.conn.JS, audienceEvents(base), 40)
	startAggregator(t, w.conn.JS, WithFlush(100*time.Millisecond, 50000))
	q := url.Values{"from": {base.Add(-24 * time.Hour).Format(time.DateOnly)}, "to": {time.Now().UTC().Format(time.DateOnly)}, "by": {"hour"}}
	var rep Report
	waitUntil(t, 30*time.Second, "the site's pageviews", func() bool {
		code, body, _ := w.do(t, "GET", "/v1/sites/s0/stats?"+q.Encode(), w.p1, "")
		return code == 200 && jsonInto(body, &rep) && rep.Totals.Audience != nil && rep.Totals.Pageviews == 800
	})

	page := browsertest.Start(t, chromedp.WindowSize(1200, 1000))
	browsertest.Run(t, page, "open the site view", chromedp.Navigate(w.srv.URL+"/dashboard#"+url.Values{"from": q["from"], "to": q["to"], "site": {"s0"}}.Encode()))
	browsertest.Wait(t, page, "the sign-in form", 20*time.Second, `!document.getElementById("signin").hidden`)
	browsertest.Run(t, page, "sign in", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById("key").value = %q; document.getElementById("signin-form").requestSubmit(); true`, w.p1)))
	browsertest.Wait(t, page, "the audience", 30*time.Second, `document.getElementById("tops").dataset.ready === "s0"`)

	// The realtime line is there (the set is an hour old: nothing is live).
	browsertest.Wait(t, page, "the realtime count", 10*time.Second, `document.getElementById("realtime").dataset.pageviews === "0"`)
	for metric, want := range map[string]uint64{"pageviews": rep.Totals.Pageviews, "visitors": *rep.Totals.Visitors, "searches": 20, "events": 10} {
		got := browsertest.Run(t, page, "card "+metric, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('#aud-cards [data-metric=%q]').dataset.value`, metric)))
		if got != strconv.FormatUint(want, 10) {
			t.Errorf("card %s: %s, API %d", metric, got, want)
		}
	}
	if sum := browsertest.Run(t, page, "pageviews chart", chromedp.Evaluate[string](`document.getElementById("chart-pageviews").dataset.sum`)); sum != "800" {
		t.Errorf("the pageviews chart sums to %s", sum)
	}
	top := func(b string) string {
		return browsertest.Run(t, page, "top "+b, chromedp.Evaluate[string](fmt.Sprintf(
			`Array.from(document.querySelectorAll('[data-breakdown=%q] tr[data-value]')).map(function(r){return r.dataset.value+"="+r.children[1].dataset.value}).join(" ")`, b)))
	}
	for b, want := range map[string]string{
		"page": "/a=600 /b=150 /c=50", "referrer": "search.example=150", "language": "ru=450 en=300", "utm_source": "mail=600",
	} {
		if got := top(b); got != want {
			t.Errorf("top %s: %q, want %q", b, got, want)
		}
	}
	dir := t.TempDir()
	if d := os.Getenv("ADSYN_SCREENSHOTS"); d != "" {
		dir = d // to look at them
	}
	screenshot(t, page, filepath.Join(dir, "site.png"))
	browsertest.Run(t, page, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if browsertest.Run(t, page, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the site view is wider than a phone's screen")
	}
	screenshot(t, page, filepath.Join(dir, "site-phone.png"))
}

func jsonInto(body string, v any) bool { return json.Unmarshal([]byte(body), v) == nil }
