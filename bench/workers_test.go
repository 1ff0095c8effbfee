package bench

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// A short segments run loses, doubles and leaks nothing, compares writes
// with writes and times freshness from outside the builder.
func TestSegmentsScenario(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Options{Duration: time.Second, Rounds: 2, Rate: 2000}
	o.defaults()
	r, err := runSegments(ctx, conn, o, SegmentsOptions{Visitors: 2000, Seed: 7}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Lost != 0 || r.Extra["duplicated"] != 0 || r.Extra["sensitive_leaks"] != 0 || r.Extra["dropped"] != uint64(0) {
		t.Errorf("lost %d, extras %v", r.Lost, r.Extra)
	}
	if r.Extra["records"] != r.Extra["visitors"] || r.Extra["skipped_consent"] == uint64(0) {
		t.Errorf("records %v of %v visitors, no consent %v", r.Extra["records"], r.Extra["visitors"], r.Extra["skipped_consent"])
	}
	if r.Ops == 0 || r.OpsPerS <= 0 || r.Ceiling <= 0 || len(r.Extra["rounds"].([]float64)) != 2 {
		t.Errorf("writes against writes not measured: %+v", r)
	}
	if n, _ := r.Extra["fixed_rate_events"].(int64); n == 0 || r.P50 <= 0 || r.P99 < r.P50 {
		t.Errorf("freshness not measured: %d events, p50 %v p99 %v", n, r.P50, r.P99)
	}
}

// A short stats run counts every event, alternates rounds and answers its
// query; its slowest query is not called a p99.9.
func TestStatsScenario(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Options{Rounds: 2}
	o.defaults()
	r, err := runStats(ctx, conn, o, statsOptions{Events: 10_000, Campaigns: 100, Sites: 10, QueryDays: 7, Queries: 5}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Lost != 0 || r.Ops != 20_000 || r.OpsPerS <= 0 || r.Ceiling <= 0 || r.Extra["query_hours"] != 7*24 || r.P50 <= 0 {
		t.Errorf("%+v", r)
	}
	if len(r.Extra["rounds"].([]float64)) != 2 || !r.NoP999 || r.Extra["query_max_ms"].(float64) < r.P99 {
		t.Errorf("rounds or latency fields: %+v", r)
	}
	// The mix's visitors, counted by the sketches, against the set the
	// generator used.
	if e, ok := r.Extra["visitors_error_pct"].(float64); !ok || e > 2 || r.Extra["visitors_known"].(int) < 1000 {
		t.Errorf("visitors: %v known, %v estimated, error %v%%", r.Extra["visitors_known"], r.Extra["visitors_estimated"], r.Extra["visitors_error_pct"])
	}
	var js strings.Builder
	if err := r.JSON(&js); err != nil || !strings.Contains(js.String(), `"p999_ms":null`) {
		t.Errorf("JSON %s: %v", js.String(), err)
	}
}

// A short syndication run delivers every change to every partner and times
// the fixed-rate changes, merged ones included, without calling them lost.
func TestSyndicationScenario(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Options{Duration: 2 * time.Second, Rounds: 1, Rate: 300}
	o.defaults()
	r, err := runSyndication(ctx, conn, o, SyndicationOptions{Users: 200, Shards: 4}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	// 300 changes over 200 users: a hundred users change twice.
	if r.Lost != 0 || r.Ops != 200*5 || r.Ceiling <= 0 || r.Extra["fixed_rate_changes"] != 300 {
		t.Errorf("%+v", r)
	}
	if n, _ := r.Extra["fixed_rate_timed_deliveries"].(int64); n != 300*5 {
		t.Errorf("timed %d deliveries, want one per change and partner, merged or not (1500)", n)
	}
}

// The ad mix holds the shares it states: cold visitors, each asked for
// once, and the consent signals.
func TestAdMix(t *testing.T) {
	m, err := newAdMix(100, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	// The TC strings grant what they say to the scenario's vendor, and
	// only the granting one does.
	if g := consent.Grants([]byte(m.tcGrant), adVendorID); !g.Allow(consent.Personalize) || !g.Allow(consent.StoreOnDevice) {
		t.Errorf("granting string grants %v", g)
	}
	if g := consent.Grants([]byte(m.tcRefuse), adVendorID); g.Allow(consent.Personalize) || g.Allow(consent.StoreOnDevice) {
		t.Errorf("refusing string grants %v", g)
	}
	const n = 20_000
	var gpc, grant, refuse, cold int
	seen := map[string]bool{}
	var req fasthttp.Request
	for i := range uint64(n) {
		req.Reset()
		m.request(i, &req)
		args := req.URI().QueryArgs()
		v := string(args.Peek("u"))
		switch tc := string(args.Peek("gdpr_consent")); {
		case string(req.Header.Peek("Sec-GPC")) == "1":
			gpc++
		case tc == m.tcGrant:
			grant++
		case tc == m.tcRefuse:
			refuse++
		}
		if k, err := strconv.Atoi(v[1:]); err == nil && k >= 20_000 {
			cold++
			if seen[v] {
				t.Fatalf("cold visitor %s asked for twice", v)
			}
			seen[v] = true
		}
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{{"GPC", gpc, 10}, {"granting TC string", grant, 40}, {"refusing TC string", refuse, 10}, {"cold visitors", cold, 20}} {
		if pct := c.got * 100 / n; pct < c.want-2 || pct > c.want+2 {
			t.Errorf("%s: %d%% of requests, want %d%%", c.name, pct, c.want)
		}
	}
}
