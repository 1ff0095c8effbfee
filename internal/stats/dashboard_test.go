package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/adsyn/adsyn/internal/browsertest"
)

// The dashboard in headless Chromium: sign in with a marketer's key, pick a
// campaign, see the chart and the numbers the API returns.
func TestDashboardInChromium(t *testing.T) {
	w := newWorld(t, true)
	page := browsertest.Start(t, chromedp.WindowSize(1200, 900))
	browsertest.Run(t, page, "open the dashboard", chromedp.Navigate(w.srv.URL+"/dashboard"))
	browsertest.Wait(t, page, "the sign-in form", 20*time.Second, `document.getElementById("signin-form") && !document.getElementById("signin").hidden`)

	browsertest.Run(t, page, "sign in", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById("key").value = %q; document.getElementById("signin-form").requestSubmit(); true`, w.m1)))
	browsertest.Wait(t, page, "the campaign table", 20*time.Second, `document.querySelectorAll("#tb-campaigns tr[data-id]").length === 5`)

	from := browsertest.Run(t, page, "from", chromedp.Evaluate[string](`document.getElementById("from").value`))
	to := browsertest.Run(t, page, "to", chromedp.Evaluate[string](`document.getElementById("to").value`))
	q := url.Values{"from": {from}, "to": {to}}

	// The table shows the summary's totals.
	var s Summary
	if code, body, _ := w.do(t, "GET", "/v1/stats/summary?"+q.Encode(), w.m1, ""); code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("summary: %d %s", code, body)
	}
	for _, e := range s.Campaigns {
		shown := browsertest.Run(t, page, "table "+e.ID, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('#tb-campaigns tr[data-id=%q] td:nth-child(2)').dataset.value`, e.ID)))
		if shown != strconv.FormatInt(e.Totals.Impressions, 10) {
			t.Errorf("table %s: %s impressions, API %d", e.ID, shown, e.Totals.Impressions)
		}
	}

	browsertest.Run(t, page, "pick c2", chromedp.Evaluate[bool](`document.querySelector('#tb-campaigns tr[data-id="c2"] button').click(); true`))
	browsertest.Wait(t, page, "the campaign's chart", 20*time.Second, `document.getElementById("detail").dataset.ready === "c2" && document.querySelector("#chart-impressions path.line")`)

	q.Set("by", "day")
	var rep Report
	if code, body, _ := w.do(t, "GET", "/v1/campaigns/c2/stats?"+q.Encode(), w.m1, ""); code != 200 || json.Unmarshal([]byte(body), &rep) != nil {
		t.Fatalf("stats: %d %s", code, body)
	}
	if rep.Totals.Impressions == 0 {
		t.Fatal("no impressions to show")
	}
	card := func(metric string) float64 {
		v := browsertest.Run(t, page, "card "+metric, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('#cards [data-metric=%q]').dataset.value`, metric)))
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("card %s: %q", metric, v)
		}
		return f
	}
	for metric, want := range map[string]float64{
		"impressions": float64(rep.Totals.Impressions), "clicks": float64(rep.Totals.Clicks),
		"ctr": rep.Totals.CTR, "conversions": float64(rep.Totals.Conversions), "spend": rep.Totals.Spend,
	} {
		if got := card(metric); math.Abs(got-want) > 1e-9 {
			t.Errorf("card %s: %v, API %v", metric, got, want)
		}
	}
	for _, c := range []struct{ id, field string }{{"chart-impressions", "impressions"}, {"chart-clicks", "clicks"}} {
		points := browsertest.Run(t, page, c.id+" points", chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).dataset.points`, c.id)))
		sum := browsertest.Run(t, page, c.id+" sum", chromedp.Evaluate[string](fmt.Sprintf(`document.getElementById(%q).dataset.sum`, c.id)))
		var want int64
		for _, r := range rep.Series {
			if c.field == "impressions" {
				want += r.Impressions
			} else {
				want += r.Clicks
			}
		}
		if points != strconv.Itoa(len(rep.Series)) || sum != strconv.FormatInt(want, 10) {
			t.Errorf("%s: %s points summing to %s, API %d points summing to %d", c.id, points, sum, len(rep.Series), want)
		}
	}
	dir := t.TempDir()
	screenshot(t, page, filepath.Join(dir, "dashboard.png"))

	// On a phone the page fits the screen's width.
	browsertest.Run(t, page, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	if browsertest.Run(t, page, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the page is wider than a phone's screen")
	}
	screenshot(t, page, filepath.Join(dir, "dashboard-phone.png"))
}

// screenshot writes a PNG of the whole page to path; a blank one fails t.
func screenshot(t *testing.T, page context.Context, path string) {
	t.Helper()
	b := browsertest.Run(t, page, "screenshot", chromedp.FullScreenshot(100))
	if len(b) < 1000 || !browsertest.Colorful(t, b) {
		t.Fatalf("screenshot %s: %d bytes, blank", path, len(b))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
