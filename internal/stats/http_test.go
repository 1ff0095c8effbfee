package stats

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/api/apitest"
	"github.com/adsyn/adsyn/internal/auth"
	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

// world is a running API over real NATS: campaigns c0-c4 belong to
// advertiser a1 and c5-c9 to a2; sites s0-s1 to publisher p1, s2-s3 to p2.
type world struct {
	conn   *bus.Conn
	keys   *auth.Keys
	srv    *httptest.Server
	events []event.Event
	base   time.Time
	admin  string
	m1, m2 string // marketers of a1 and a2
	p1     string // publisher p1
}

func owners() []HandlerOption {
	campOwner := func(id string) (string, bool) {
		var n int
		if _, err := fmt.Sscanf(id, "c%d", &n); err != nil || n < 0 || n > 9 {
			return "", false
		}
		if n < 5 {
			return "a1", true
		}
		return "a2", true
	}
	siteOwner := func(id string) (string, bool) {
		switch id {
		case "s0", "s1":
			return "p1", true
		case "s2", "s3":
			return "p2", true
		}
		return "", false
	}
	return []HandlerOption{
		WithCampaignOwner(campOwner),
		WithSiteOwner(siteOwner),
		WithCampaigns(func(adv string) []CampaignInfo {
			var out []CampaignInfo
			for n := range 10 {
				id := fmt.Sprintf("c%d", n)
				if o, _ := campOwner(id); adv == "" || o == adv {
					out = append(out, CampaignInfo{ID: id, Name: "Campaign " + id})
				}
			}
			return out
		}),
		WithSites(func(pub string) []SiteInfo {
			var out []SiteInfo
			for n := range 4 {
				id := fmt.Sprintf("s%d", n)
				if o, _ := siteOwner(id); pub == "" || o == pub {
					out = append(out, SiteInfo{ID: id, Name: "Site " + id})
				}
			}
			return out
		}),
		WithTrackingNumbers(func(number string) (string, bool) {
			if number == "+74950001122" {
				return "c3", true
			}
			return "", false
		}),
	}
}

func newWorld(t *testing.T, withEvents bool) *world {
	t.Helper()
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys, err := auth.NewKeys(ctx, conn.JS, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(ctx, conn.JS, keys, owners()...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	w := &world{conn: conn, keys: keys, srv: httptest.NewServer(mux), base: time.Now().UTC()}
	t.Cleanup(w.srv.Close)
	mk := func(role auth.Role, owner string) string {
		s, _, err := keys.Create(ctx, role, owner, string(role)+" "+owner)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w.admin, w.m1, w.m2, w.p1 = mk(auth.Admin, ""), mk(auth.Marketer, "a1"), mk(auth.Marketer, "a2"), mk(auth.Publisher, "p1")
	if withEvents {
		w.events = eventsOf(5, w.base, worldMixes...)
		publishEvents(t, conn.JS, w.events, 50)
		a := startAggregator(t, conn.JS, WithFlush(100*time.Millisecond, 50000))
		waitUntil(t, 30*time.Second, "the world's 2,900 events to be applied", func() bool { return a.Applied() == 2900 })
	}
	return w
}

func (w *world) do(t *testing.T, method, path, key, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := apitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// worldMixes are the world's events: each campaign on one site in one of
// the last three hours, 2,900 events in all.
var worldMixes = []mix{
	{camp: "c0", site: "s0", hoursAgo: 0, imps: 300, priced: 100, viewable: 200, clicks: 40, convs: 20, calls: 10},
	{camp: "c1", site: "s1", hoursAgo: 1, imps: 200, viewable: 100, clicks: 20, convs: 10},
	{camp: "c2", site: "s2", hoursAgo: 2, imps: 100, viewable: 50, clicks: 10},
	{camp: "c3", site: "s3", hoursAgo: 0, imps: 150, priced: 50, clicks: 15, convs: 5},
	{camp: "c4", site: "s0", hoursAgo: 1, imps: 250, viewable: 120, clicks: 25, calls: 5},
	{camp: "c5", site: "s1", hoursAgo: 2, imps: 100, viewable: 60, clicks: 10},
	{camp: "c6", site: "s2", hoursAgo: 0, imps: 100, viewable: 60, clicks: 10},
	{camp: "c7", site: "s3", hoursAgo: 1, imps: 100, viewable: 60, clicks: 10},
	{camp: "c8", site: "s0", hoursAgo: 2, imps: 200, priced: 100, viewable: 100, clicks: 30, convs: 10},
	{camp: "c9", site: "s1", hoursAgo: 0, imps: 100, viewable: 60, clicks: 10},
}

// worldTotals are what the world's mixes add up to over all hours, worked
// out by hand: a1's campaigns and p1's site s0 (c0, c4 and c8).
var worldTotals = map[string]Counters{
	"c0": {Impressions: 400, Viewable: 200, Clicks: 40, Conversions: 30, Calls: 10, SpendMicros: 1_150_000},
	"c1": {Impressions: 200, Viewable: 100, Clicks: 20, Conversions: 10, SpendMicros: 500_000},
	"c2": {Impressions: 100, Viewable: 50, Clicks: 10, SpendMicros: 250_000},
	"c3": {Impressions: 200, Clicks: 15, Conversions: 5, SpendMicros: 575_000},
	"c4": {Impressions: 250, Viewable: 120, Clicks: 25, Conversions: 5, Calls: 5, SpendMicros: 625_000},
	"s0": {Impressions: 950, Viewable: 420, Clicks: 95, Conversions: 45, Calls: 15, SpendMicros: 2_675_000},
}

func (w *world) rangeQuery() string {
	v := url.Values{}
	v.Set("from", w.base.Add(-6*time.Hour).Format(time.RFC3339))
	v.Set("to", w.base.Add(time.Hour).Format(time.RFC3339))
	return v.Encode()
}

func TestStatsAPI(t *testing.T) {
	w := newWorld(t, true)
	q := w.rangeQuery()

	code, body, _ := w.do(t, "GET", "/v1/campaigns/c0/stats?by=hour&"+q, w.m1, "")
	if code != 200 {
		t.Fatalf("marketer on own campaign: %d %s", code, body)
	}
	var rep Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Reach == nil {
		t.Error("a campaign's totals without reach")
	}
	rep.Totals.Reach = nil // TestCampaignReach's
	if rep.Totals != MetricsOf(worldTotals["c0"]) {
		t.Errorf("totals %+v, want %+v", rep.Totals, MetricsOf(worldTotals["c0"]))
	}
	if len(rep.Series) != 7 && len(rep.Series) != 8 {
		t.Errorf("%d hourly points over 7 hours", len(rep.Series))
	}
	if rep.Totals.Impressions == 0 || rep.Totals.Spend == 0 || rep.Totals.CTR == 0 {
		t.Errorf("empty totals: %+v", rep.Totals)
	}

	// Breakdown values add up to the totals.
	code, body, _ = w.do(t, "GET", "/v1/campaigns/c0/stats?breakdown=country&"+q, w.m1, "")
	if code != 200 {
		t.Fatalf("breakdown: %d %s", code, body)
	}
	var br Report
	_ = json.Unmarshal([]byte(body), &br)
	var imps int64
	for _, v := range br.Values {
		imps += v.Impressions
	}
	if imps != rep.Totals.Impressions || br.Breakdown != "country" || len(br.Values) < 2 {
		t.Errorf("breakdown by country: %d impressions over %d values, want %d", imps, len(br.Values), rep.Totals.Impressions)
	}

	// CSV.
	code, body, hdr := w.do(t, "GET", "/v1/campaigns/c0/stats?by=day&format=csv&"+q, w.m1, "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", code, hdr)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) < 2 || rows[0][0] != "time" || rows[0][1] != "impressions" {
		t.Fatalf("csv: %v %q", err, body)
	}

	// Publishers see their own sites.
	if code, body, _ := w.do(t, "GET", "/v1/sites/s0/stats?"+q, w.p1, ""); code != 200 {
		t.Errorf("publisher on own site: %d %s", code, body)
	} else {
		var sr Report
		_ = json.Unmarshal([]byte(body), &sr)
		aud := sr.Totals.Audience // a site's own traffic: none in this set
		sr.Totals.Audience = nil
		if sr.Totals != MetricsOf(worldTotals["s0"]) || aud == nil || aud.Pageviews != 0 || aud.Visitors == nil {
			t.Errorf("site totals %+v, audience %+v", sr.Totals, aud)
		}
	}
	// Admins see everything.
	for _, p := range []string{"/v1/campaigns/c7/stats", "/v1/sites/s3/stats"} {
		if code, body, _ := w.do(t, "GET", p+"?"+q, w.admin, ""); code != 200 {
			t.Errorf("admin %s: %d %s", p, code, body)
		}
	}
}

func TestStatsAccessDenied(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	me, err := w.keys.Authenticate(w.m1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, key string
	}{
		{"another advertiser's campaign", "/v1/campaigns/c5/stats", w.m1},
		{"unknown campaign", "/v1/campaigns/zz/stats", w.m1},
		{"publisher on a campaign", "/v1/campaigns/c0/stats", w.p1},
		{"marketer on a site", "/v1/sites/s0/stats", w.m1},
		{"another publisher's site", "/v1/sites/s2/stats", w.p1},
		{"marketer posting a call", "/v1/events/call", w.m1},
	}
	for _, c := range cases {
		method := "GET"
		if strings.HasSuffix(c.path, "call") {
			method = "POST"
		}
		code, body, _ := w.do(t, method, c.path, c.key, "")
		if code != 403 || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("%s: %d %s, want 403", c.name, code, body)
		}
	}
	if code, _, _ := w.do(t, "GET", "/v1/campaigns/c0/stats", "", ""); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
	// The attempt is in the audit log, with who and what.
	entries, err := w.keys.Audit().Recent(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if !e.Allowed && e.KeyID == me.KeyID && strings.Contains(e.Resource, "/v1/campaigns/c5/stats") {
			found = true
		}
	}
	if !found {
		t.Errorf("denied read of c5 by %s not in the audit log: %+v", me.KeyID, entries)
	}
}

func TestStatsBadParameters(t *testing.T) {
	w := newWorld(t, false)
	cases := []struct {
		query, code string
	}{
		{"from=yesterday", "invalid_from"},
		{"to=2025-13-01", "invalid_to"},
		{"from=2025-02-01&to=2025-01-01", "invalid_range"},
		{"from=2020-01-01&to=2025-01-01", "range_too_long"},
		{"from=2025-01-01&to=2025-06-01&by=hour", "range_too_long"},
		{"by=week", "invalid_by"},
		{"breakdown=campaign", "invalid_breakdown"},
		{"breakdown=colour", "invalid_breakdown"},
		{"format=xml", "invalid_format"},
		{"limit=5", "unknown_parameter"},
	}
	for _, c := range cases {
		code, body, _ := w.do(t, "GET", "/v1/campaigns/c0/stats?"+c.query, w.m1, "")
		if code != 400 || !strings.Contains(body, `"code":"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want 400 %s", c.query, code, body, c.code)
		}
	}
	if code, body, _ := w.do(t, "GET", "/v1/sites/s0/stats?breakdown=creative", w.p1, ""); code != 400 {
		t.Errorf("site breakdown by creative: %d %s", code, body)
	}
	if code, body, _ := w.do(t, "GET", "/v1/campaigns/bad.id/stats", w.admin, ""); code != 400 || !strings.Contains(body, "invalid_id") {
		t.Errorf("bad id: %d %s", code, body)
	}
	if code, body, _ := w.do(t, "GET", "/v1/stats/summary?from=nope", w.m1, ""); code != 400 || !strings.Contains(body, "invalid_from") {
		t.Errorf("summary bad from: %d %s", code, body)
	}
}

func TestSummary(t *testing.T) {
	w := newWorld(t, true)
	q := w.rangeQuery()
	var s Summary
	code, body, _ := w.do(t, "GET", "/v1/stats/summary?"+q, w.m1, "")
	if code != 200 {
		t.Fatalf("summary: %d %s", code, body)
	}
	_ = json.Unmarshal([]byte(body), &s)
	if s.Role != "marketer" || len(s.Campaigns) != 5 || len(s.Sites) != 0 {
		t.Fatalf("marketer summary: %+v", s)
	}
	for _, e := range s.Campaigns {
		if e.Totals != MetricsOf(worldTotals[e.ID]) {
			t.Errorf("%s: %+v", e.ID, e.Totals)
		}
	}
	code, body, _ = w.do(t, "GET", "/v1/stats/summary?"+q, w.p1, "")
	s = Summary{}
	_ = json.Unmarshal([]byte(body), &s)
	if code != 200 || len(s.Sites) != 2 || len(s.Campaigns) != 0 || s.Sites[0].Totals != MetricsOf(worldTotals["s0"]) {
		t.Errorf("publisher summary: %d %s", code, body)
	}
	code, body, _ = w.do(t, "GET", "/v1/stats/summary?"+q, w.admin, "")
	s = Summary{}
	_ = json.Unmarshal([]byte(body), &s)
	if code != 200 || len(s.Sites) != 4 || len(s.Campaigns) != 10 {
		t.Errorf("admin summary: %d %s", code, body)
	}
}

func TestCallWebhook(t *testing.T) {
	w := newWorld(t, false)
	a := startAggregator(t, w.conn.JS)
	start := w.base.Add(-10 * time.Minute).Truncate(time.Second).Format(time.RFC3339)
	body := `{"tracking_number":"+7 (495) 000-11-22","start":"` + start + `","duration_s":93.5,"call_type":"inbound","caller_number":"+7 916 123-45-67"}`
	code, resp, _ := w.do(t, "POST", "/v1/events/call", w.admin, body)
	if code != 202 || !strings.Contains(resp, `"campaign":"c3"`) || !strings.Contains(resp, `"duplicate":false`) {
		t.Fatalf("call: %d %s", code, resp)
	}
	// The provider retries: stored once.
	code, resp, _ = w.do(t, "POST", "/v1/events/call", w.admin, body)
	if code != 202 || !strings.Contains(resp, `"duplicate":true`) {
		t.Fatalf("retry: %d %s", code, resp)
	}

	// What is stored has the area code and not the number.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stored []event.Event
	n, err := bus.ReadEvents(ctx, w.conn.JS, 1, func(_ uint64, e *event.Event) error {
		stored = append(stored, *e)
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("read events: %d %v", n, err)
	}
	e := stored[0]
	if e.Kind != event.KindCall || e.Campaign != "c3" || e.Area != "+7 916" || e.Value != 93.5 || e.Name != "inbound" {
		t.Errorf("stored call: %+v", e)
	}
	s, _ := w.conn.JS.Stream(ctx, bus.StreamEvents)
	raw, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{"1234567", "123-45-67", "9161234567"} {
		if strings.Contains(string(raw.Data), frag) || strings.Contains(fmt.Sprint(raw.Header), frag) {
			t.Errorf("the caller's number (%s) is stored", frag)
		}
	}

	// Counted as a call and a conversion of c3.
	kv, _ := w.conn.JS.KeyValue(ctx, bus.BucketStats)
	waitUntil(t, 10*time.Second, "the call to be counted", func() bool {
		e, err := kv.Get(ctx, Key(ScopeCampaign, "c3", w.base.Add(-10*time.Minute)))
		if err != nil {
			return false
		}
		r, _ := DecodeRecord(e.Value())
		return r.Totals.Calls == 1 && r.Totals.Conversions == 1
	})
	_ = a

	bad := []struct {
		body, code string
		status     int
	}{
		{`{"tracking_number":"+1 555 0000","start":"` + start + `","duration_s":3,"call_type":"inbound"}`, "unknown_tracking_number", 404},
		{`{"tracking_number":"+7 495 000-11-22","start":"yesterday","duration_s":3,"call_type":"inbound"}`, "invalid_start", 400},
		{`{"tracking_number":"+7 495 000-11-22","start":"` + start + `","duration_s":-1,"call_type":"inbound"}`, "invalid_duration", 400},
		{`{"tracking_number":"+7 495 000-11-22","start":"` + start + `","duration_s":3,"call_type":"in bound"}`, "invalid_call_type", 400},
		{`{"tracking_number":"+7 495 000-11-22","start":"` + start + `","duration_s":3,"call_type":"inbound","caller_number":"call me"}`, "invalid_caller_number", 400},
		{`{"tracking_number":"+7 495 000-11-22","extra":1}`, "unknown_field", 400},
		{`{"tracking_number":`, "invalid_json", 400},
		{`{"tracking_number":"` + strings.Repeat("1", 5000) + `"}`, "body_too_large", 413},
	}
	for _, c := range bad {
		code, resp, _ := w.do(t, "POST", "/v1/events/call", w.admin, c.body)
		if code != c.status || !strings.Contains(resp, `"`+c.code+`"`) {
			t.Errorf("%.60s: %d %s, want %d %s", c.body, code, resp, c.status, c.code)
		}
	}
}

func TestDashboardServed(t *testing.T) {
	w := newWorld(t, false)
	code, body, hdr := w.do(t, "GET", "/dashboard", "", "")
	if code != 200 || !strings.Contains(body, "<svg") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("dashboard: %d %v", code, hdr)
	}
	csp := hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP: %s", csp)
	}
	for _, ext := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", ""), ext) {
			t.Errorf("the page refers to %s", ext)
		}
	}
	if len(body) > 40<<10 {
		t.Errorf("the page is %d bytes", len(body))
	}
}
