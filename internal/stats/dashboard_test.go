package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
)

// The dashboard in headless Chromium: sign in with a marketer's key, pick a
// campaign, see the chart and the numbers the API returns.
func TestDashboardInChromium(t *testing.T) {
	w := newWorld(t, 3000)
	page := startChromium(t)
	if _, err := page.call("Page.enable", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if _, err := page.call("Page.navigate", map[string]any{"url": w.srv.URL + "/dashboard"}); err != nil {
		t.Fatal(err)
	}
	page.waitJS(t, "the sign-in form", `document.getElementById("signin-form") && !document.getElementById("signin").hidden`)

	page.eval(t, fmt.Sprintf(`document.getElementById("key").value = %q; document.getElementById("signin-form").requestSubmit(); true`, w.m1), nil)
	page.waitJS(t, "the campaign table", `document.querySelectorAll("#tb-campaigns tr[data-id]").length === 5`)

	var from, to string
	page.eval(t, `document.getElementById("from").value`, &from)
	page.eval(t, `document.getElementById("to").value`, &to)
	q := url.Values{"from": {from}, "to": {to}}

	// The table shows the summary's totals.
	var s Summary
	if code, body, _ := w.do(t, "GET", "/v1/stats/summary?"+q.Encode(), w.m1, ""); code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("summary: %d %s", code, body)
	}
	for _, e := range s.Campaigns {
		var shown string
		page.eval(t, fmt.Sprintf(`document.querySelector('#tb-campaigns tr[data-id=%q] td:nth-child(2)').dataset.value`, e.ID), &shown)
		if shown != strconv.FormatInt(e.Totals.Impressions, 10) {
			t.Errorf("table %s: %s impressions, API %d", e.ID, shown, e.Totals.Impressions)
		}
	}

	page.eval(t, `document.querySelector('#tb-campaigns tr[data-id="c2"] button').click(); true`, nil)
	page.waitJS(t, "the campaign's chart", `document.getElementById("detail").dataset.ready === "c2" && document.querySelector("#chart-impressions path.line")`)

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
		page.eval(t, fmt.Sprintf(`document.querySelector('#cards [data-metric=%q]').dataset.value`, metric), &v)
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
		page.eval(t, fmt.Sprintf(`document.getElementById(%q).dataset.points`, c.id), &points)
		page.eval(t, fmt.Sprintf(`document.getElementById(%q).dataset.sum`, c.id), &sum)
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
	page.screenshot(t, filepath.Join(dir, "dashboard.png"))

	// On a phone the page fits the screen's width.
	if _, err := page.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}); err != nil {
		t.Fatal(err)
	}
	var overflow bool
	page.eval(t, `document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Error("the page is wider than a phone's screen")
	}
	page.screenshot(t, filepath.Join(dir, "dashboard-phone.png"))
}
