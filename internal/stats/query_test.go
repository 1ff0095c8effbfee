package stats

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2025, 5, 10, 12, 30, 0, 0, time.UTC)
	h := func(y int, m time.Month, d, hh int) int64 {
		return time.Date(y, m, d, hh, 0, 0, 0, time.UTC).Unix() / 3600
	}
	cases := []struct {
		q        string
		from, to int64
	}{
		{"", h(2025, 5, 3, 12), h(2025, 5, 10, 13)},
		{"from=2025-05-01&to=2025-05-01", h(2025, 5, 1, 0), h(2025, 5, 2, 0)},
		{"from=2025-05-01T10:15:00Z&to=2025-05-01T12:00:00Z", h(2025, 5, 1, 10), h(2025, 5, 1, 12)},
		{"from=2025-05-01T10:00:00%2B03:00&to=2025-05-02", h(2025, 5, 1, 7), h(2025, 5, 3, 0)},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.q)
		from, to, err := ParseRange(v, now)
		if err != nil || from != c.from || to != c.to {
			t.Errorf("%q: %v..%v %v, want %v..%v", c.q, hourTime(from), hourTime(to), err, hourTime(c.from), hourTime(c.to))
		}
	}
}

func TestBuild(t *testing.T) {
	day := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC).Unix() / 3600
	rec := func(imp, clk int64, country string) *Record {
		r := &Record{Totals: Counters{Impressions: imp, Clicks: clk, Viewable: imp / 2, SpendMicros: imp * 1000}}
		r.Dims[DimCountry] = map[string]Counters{country: r.Totals}
		return r
	}
	recs := map[int64]*Record{day + 1: rec(100, 10, "RU"), day + 25: rec(300, 3, "DE"), day + 26: rec(100, 1, "RU"), day + 200: rec(1, 1, "RU")}
	q := Query{Scope: ScopeCampaign, ID: "c", From: day, To: day + 48, Daily: true}
	r := Build(q, recs)
	if len(r.Series) != 2 || r.Series[0].Impressions != 100 || r.Series[1].Impressions != 400 || r.Totals.Impressions != 500 {
		t.Fatalf("daily: %+v", r)
	}
	if r.Totals.CTR != 0.028 || r.Totals.ViewableRate != 0.5 || r.Totals.Spend != 0.5 {
		t.Errorf("rates: %+v", r.Totals)
	}
	q.Daily = false
	if r := Build(q, recs); len(r.Series) != 48 || r.Series[1].Clicks != 10 || r.Series[2].Clicks != 0 {
		t.Errorf("hourly: %d points", len(r.Series))
	}
	q.ByDim, q.Breakdown, q.Daily = true, DimCountry, true
	r = Build(q, recs)
	if len(r.Values) != 2 || r.Values[0].Value != "DE" || r.Values[0].Impressions != 300 || len(r.Series) != 3 {
		t.Errorf("breakdown: %+v", r)
	}
	var b strings.Builder
	if err := r.WriteCSV(&b); err != nil || !strings.HasPrefix(b.String(), "time,country,impressions") {
		t.Errorf("csv: %v %q", err, b.String())
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=SUM(A1)": "'=SUM(A1)", "+7": "'+7", "top": "top", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
}
