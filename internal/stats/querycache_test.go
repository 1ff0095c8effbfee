package stats

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/stats/audience"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// cacheSiteRecord is site "qc"'s record of hour i of the test: 10
// pageviews, on /a (7) and /b (3), from referrer r.example (4); visitors
// v<10i> to v<10i+49>, so hour i shares 40 visitors with hour i-1.
func cacheSiteRecord(i, pageviews int) *Record {
	h := &audience.Hour{Pageviews: uint64(pageviews)}
	h.Breakdowns[audience.Page].Add("/a", uint64(pageviews-3), 100)
	h.Breakdowns[audience.Page].Add("/b", 3, 100)
	h.Breakdowns[audience.Referrer].Add("r.example", 4, 100)
	for v := 10 * i; v < 10*i+50; v++ {
		h.Visitors.Add(fmt.Sprintf("v%d", v))
	}
	return &Record{Audience: h, Seq: make([]uint64, 4)}
}

// The cache answers as a fresh read does, follows every new revision of
// a record, decodes more dimensions when a query needs them, and keeps
// within its bound.
func TestQueryCache(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	// 76 hours: three whole days and four hours of a fourth.
	day0 := tally.FloorDiv(time.Now().Unix(), 3600)/24*24 - 5*24
	const hours = 76
	for i := range hours {
		if _, err := kv.Put(ctx, tally.KeyOf(ScopeSite, "qc", day0+int64(i)), cacheSiteRecord(i, 10).AppendMsgpack(nil)); err != nil {
			t.Fatal(err)
		}
	}
	reg := metrics.NewRegistry()
	c := newQueryCache(DefaultQueryCache, reg)
	ask := func(by, breakdown string) (Report, Report) {
		t.Helper()
		v := url.Values{"by": {by}, "breakdown": {breakdown},
			"from": {hourTime(day0).Format(time.RFC3339)}, "to": {hourTime(day0 + hours).Format(time.RFC3339)}}
		if breakdown == "" {
			v.Del("breakdown")
		}
		q, err := ParseQuery(ScopeSite, "qc", v, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := tally.WithAudience
		if q.ByAudience {
			want |= tally.AudienceMaskOf(q.Audience)
		}
		recs, days, err := c.readRange(ctx, conn.JS, kv, ScopeSite, "qc", q.From, q.To, want)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := readRange(ctx, conn.JS, ScopeSite, "qc", q.From, q.To, want)
		if err != nil {
			t.Fatal(err)
		}
		return build(q, recs, days), Build(q, fresh)
	}
	fetched := func() float64 { return counterValue(t, reg, `adsyn_stats_query_cache_total{result="fetched"}`) }

	cached, fresh := ask("hour", "page")
	if !reflect.DeepEqual(cached, fresh) {
		t.Fatalf("the cached answer differs from a fresh read:\n%+v\n%+v", cached.Totals, fresh.Totals)
	}
	// 76 hours of 10 pageviews; visitors v0 to v799.
	if got := cached.Totals.Audience; got.Pageviews != 760 || math.Abs(float64(*got.Visitors)-800) > 16 {
		t.Fatalf("totals %+v visitors %d, want 760 pageviews and 800 visitors within 2%%", *got, *got.Visitors)
	}
	if n := fetched(); n != hours {
		t.Errorf("first query fetched %v records, want %d", n, hours)
	}
	if cached, _ := ask("hour", "page"); fetched() != hours || cached.Totals.Audience.Pageviews != 760 {
		t.Errorf("the same query again fetched %v records in all (want %d: none again), pageviews %d", fetched(), hours, cached.Totals.Audience.Pageviews)
	}

	// A new revision of hour 30 (a summed day's): 1,000 pageviews and 50
	// visitors never seen before.
	rec := cacheSiteRecord(30, 1000)
	for v := range 50 {
		rec.Audience.Visitors.Add(fmt.Sprintf("new%d", v))
	}
	if _, err := kv.Put(ctx, tally.KeyOf(ScopeSite, "qc", day0+30), rec.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	for _, by := range []string{"hour", "day"} {
		cached, fresh := ask(by, "")
		if !reflect.DeepEqual(cached, fresh) {
			t.Fatalf("by=%s after an update, the cached answer differs from a fresh read:\n%+v\n%+v", by, cached.Totals, fresh.Totals)
		}
		if got := cached.Totals.Audience; got.Pageviews != 1750 || math.Abs(float64(*got.Visitors)-850) > 17 {
			t.Fatalf("by=%s after an update: totals %+v visitors %d, want 1750 pageviews and 850 visitors", by, *got, *got.Visitors)
		}
	}
	if n := fetched(); n != hours+1 {
		t.Errorf("after one record changed, %v records fetched in all, want %d", n, hours+1)
	}

	// Another breakdown: the cached records lack it and are read again.
	cached, fresh = ask("day", "referrer")
	if !reflect.DeepEqual(cached, fresh) || len(cached.Values) != 1 || cached.Values[0].Value != "r.example" || cached.Values[0].Pageviews != 4*hours {
		t.Fatalf("referrers %+v, fresh %+v", cached.Values, fresh.Values)
	}

	// A bound smaller than the range: answers stay right, memory bounded.
	small := newQueryCache(200<<10, metrics.NewRegistry())
	c = small
	for range 2 {
		if cached, fresh := ask("hour", "page"); !reflect.DeepEqual(cached, fresh) {
			t.Fatal("a small cache's answer differs from a fresh read")
		}
	}
	if small.size > small.max || len(small.items) == 0 {
		t.Errorf("a cache of %d bytes holds %d in %d entries", small.max, small.size, len(small.items))
	}
}

// counterValue reads one series of reg's text.
func counterValue(t *testing.T, reg *metrics.Registry, series string) float64 {
	t.Helper()
	var b strings.Builder
	reg.WriteText(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
