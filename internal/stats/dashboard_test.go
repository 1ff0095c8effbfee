package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/browsertest"
)

// The dashboard in headless Chromium: sign in with a marketer's key, pick a
// campaign, see the chart and the numbers the API returns.
func TestDashboardInChromium(t *testing.T) {
	w := newWorld(t, 3000)
	page := browsertest.Start(t, "--window-size=1200,900").Page(t)
	page.Call(t, "Page.enable", nil)
	page.Call(t, "Page.navigate", map[string]any{"url": w.srv.URL + "/dashboard"})
	page.Wait(t, "the sign-in form", 20*time.Second, `document.getElementById("signin-form") && !document.getElementById("signin").hidden`)

	page.Eval(t, fmt.Sprintf(`document.getElementById("key").value = %q; document.getElementById("signin-form").requestSubmit(); true`, w.m1), nil)
	page.Wait(t, "the campaign table", 20*time.Second, `document.querySelectorAll("#tb-campaigns tr[data-id]").length === 5`)

	var from, to string
	page.Eval(t, `document.getElementById("from").value`, &from)
	page.Eval(t, `document.getElementById("to").value`, &to)
	q := url.Values{"from": {from}, "to": {to}}

	// The table shows the summary's totals.
	var s Summary
	if code, body, _ := w.do(t, "GET", "/v1/stats/summary?"+q.Encode(), w.m1, ""); code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("summary: %d %s", code, body)
	}
	for _, e := range s.Campaigns {
		var shown string
		page.Eval(t, fmt.Sprintf(`document.querySelector('#tb-campaigns tr[data-id=%q] td:nth-child(2)').dataset.value`, e.ID), &shown)
		if shown != strconv.FormatInt(e.Totals.Impressions, 10) {
			t.Errorf("table %s: %s impressions, API %d", e.ID, shown, e.Totals.Impressions)
		}
	}

	page.Eval(t, `document.querySelector('#tb-campaigns tr[data-id="c2"] button').click(); true`, nil)
	page.Wait(t, "the campaign's chart", 20*time.Second, `document.getElementById("detail").dataset.ready === "c2" && document.querySelector("#chart-impressions path.line")`)

	q.Set("by", "day")
	var rep Report
	if code, body, _ := w.do(t, "GET", "/v1/campaigns/c2/stats?"+q.Encode(), w.m1, ""); code != 200 || json.Unmarshal([]byte(body), &rep) != nil {
		t.Fatalf("stats: %d %s", code, body)
	}
	if rep.Totals.Impressions == 0 {
		t.Fatal("no impressions to show")
	}
	card := func(metric string) float64 {
		var v string
		page.Eval(t, fmt.Sprintf(`document.querySelector('#cards [data-metric=%q]').dataset.value`, metric), &v)
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
		var points, sum string
		page.Eval(t, fmt.Sprintf(`document.getElementById(%q).dataset.points`, c.id), &points)
		page.Eval(t, fmt.Sprintf(`document.getElementById(%q).dataset.sum`, c.id), &sum)
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
	page.Screenshot(t, filepath.Join(dir, "dashboard.png"))

	// On a phone the page fits the screen's width.
	page.Call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true})
	var overflow bool
	page.Eval(t, `document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Error("the page is wider than a phone's screen")
	}
	page.Screenshot(t, filepath.Join(dir, "dashboard-phone.png"))
}
