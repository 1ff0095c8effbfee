package stats

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/audience"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// audienceEvents is a known set for site s0 in one hour: 300 visitors, each
// viewing /a one to three times and half of them /b; a quarter came from a
// search engine; even ones read Russian. 50 pageviews of /c carry no
// visitor id (no consent), and there are 20 searches and 10 signups.
func audienceEvents(base time.Time) []event.Event {
	var evs []event.Event
	add := func(e event.Event) {
		e.ID, e.TS, e.Site = event.NewID(), base.UnixMilli(), "s0"
		evs = append(evs, e)
	}
	for i := range 300 {
		v := fmt.Sprintf("visitor-%03d", i)
		lang, ref := "en", ""
		if i%2 == 0 {
			lang = "ru"
		}
		if i%4 == 0 {
			ref = "https://www.search.example/q"
		}
		for range i%3 + 1 {
			add(event.Event{Kind: event.KindPageview, Visitor: v, URL: "https://s0.example/a?utm_source=mail", Referrer: ref, Lang: lang})
		}
		if i%2 == 0 {
			add(event.Event{Kind: event.KindPageview, Visitor: v, URL: "https://s0.example/b", Referrer: "https://s0.example/a", Lang: lang})
		}
	}
	for range 50 {
		add(event.Event{Kind: event.KindPageview, URL: "https://s0.example/c"})
	}
	for range 20 {
		add(event.Event{Kind: event.KindSearch, Visitor: "visitor-000", Query: "plumber"})
	}
	for range 10 {
		add(event.Event{Kind: event.KindCustom, Visitor: "visitor-001", Name: "signup"})
	}
	return evs
}

// TestAudienceExactlyOnce: a site's pageviews, pages, referrers, languages,
// searches and custom events are exact, and its visitors within 2%, though
// every message is published twice and thirty are redelivered.
func TestAudienceExactlyOnce(t *testing.T) {
	conn := bustest.Start(t)
	base := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	evs := audienceEvents(base)
	msgs := publishEvents(t, conn.JS, evs, 40)
	publishMsgs(t, conn.JS, msgs) // a publisher's retries: the same message ids

	a, err := New(conn.JS, WithCPM(cpmOf), WithFlush(200*time.Millisecond, 50000), WithAckWait(time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var naks atomic.Int64
	a.ackFn = func(m jetstream.Msg) error {
		if naks.Add(1) <= 30 {
			return m.Nak() // written, then delivered again
		}
		return m.Ack()
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopAggregator(t, a)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	key := tally.Key(tally.ScopeSite, "s0", base)
	var rec *Record
	waitUntil(t, 30*time.Second, "every pageview counted", func() bool {
		e, err := kv.Get(ctx, key)
		if err != nil {
			return false
		}
		if rec, err = tally.DecodeRecord(e.Value()); err != nil {
			t.Fatal(err)
		}
		return rec.Audience != nil && rec.Audience.Pageviews+rec.Audience.Searches+rec.Audience.Events == uint64(len(evs))
	})
	waitUntil(t, 20*time.Second, "nakked messages to come back", func() bool { return a.m.duplicates.Load() > 0 })

	// Every figure, from a fresh read after the redeliveries.
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = tally.DecodeRecord(e.Value()); err != nil {
		t.Fatal(err)
	}
	h := rec.Audience
	// 300 visitors: 100 each view /a once, twice and three times; 150 view /b.
	pages := map[string]uint64{"/a": 600, "/b": 150, "/c": 50}
	if h.Pageviews != 800 || h.Searches != 20 || h.Events != 10 {
		t.Errorf("pageviews %d, searches %d, events %d; want 800, 20, 10", h.Pageviews, h.Searches, h.Events)
	}
	for page, n := range pages {
		if got := h.Breakdowns[audience.Page].Counts[page]; got != n {
			t.Errorf("page %s: %d, want %d", page, got, n)
		}
	}
	// Referrers: the 75 visitors i%4==0 came from search on every /a view
	// (i%3+1 views each: 25 of each count) = 150; /b's referrer is the site.
	if got := h.Breakdowns[audience.Referrer].Counts; len(got) != 1 || got["search.example"] != 150 {
		t.Errorf("referrers %v", got)
	}
	if got := h.Breakdowns[audience.Language].Counts; got["ru"] != 300+150 || got["en"] != 300 {
		t.Errorf("languages %v", got)
	}
	if got := h.Breakdowns[audience.UTMSource].Counts; got["mail"] != 600 {
		t.Errorf("utm_source %v", got)
	}
	if got := h.Breakdowns[audience.EventName].Counts; got["signup"] != 10 {
		t.Errorf("events %v", got)
	}
	est := h.Visitors.Estimate()
	if math.Abs(float64(est)-300)/300 > 0.02 {
		t.Errorf("visitors %d, want 300 within 2%%", est)
	}

	// The report: totals, and the page breakdown sorted by pageviews.
	q, err := ParseQuery(ScopeSite, "s0", url.Values{"breakdown": {"page"}}, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(q, map[int64]*Record{tally.FloorDiv(base.Unix(), 3600): rec})
	if rep.Totals.Audience == nil || rep.Totals.Pageviews != 800 || *rep.Totals.Visitors != est {
		t.Fatalf("report totals %+v", rep.Totals)
	}
	var got []string
	for _, v := range rep.Values {
		got = append(got, fmt.Sprintf("%s=%d", v.Value, v.Pageviews))
	}
	if fmt.Sprint(got) != "[/a=600 /b=150 /c=50]" {
		t.Errorf("page values %v", got)
	}
	t.Logf("%d events, every message twice, %d nakked: pageviews %d, pages %v, visitors %d of 300",
		len(evs), min(naks.Load(), 30), h.Pageviews, h.Breakdowns[audience.Page].Counts, est)
}

// TestCampaignReach: 100 visitors see campaign c0 one to four times (250
// impressions), and 30 impressions go to visitors without an id: the
// campaign's reach is 100 visitors within 2%, at 2.5 impressions each.
func TestCampaignReach(t *testing.T) {
	conn := bustest.Start(t)
	base := time.Now().UTC().Truncate(time.Hour).Add(10 * time.Minute)
	var evs []event.Event
	for i := range 100 {
		for range i%4 + 1 {
			evs = append(evs, event.Event{ID: event.NewID(), TS: base.UnixMilli(), Kind: event.KindImpression, Campaign: "c0", Site: "s0", Visitor: fmt.Sprintf("v%03d", i)})
		}
	}
	for range 30 {
		evs = append(evs, event.Event{ID: event.NewID(), TS: base.UnixMilli(), Kind: event.KindImpression, Campaign: "c0", Site: "s0"})
	}
	publishEvents(t, conn.JS, evs, 40)
	startAggregator(t, conn.JS)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hour := tally.FloorDiv(base.Unix(), 3600)
	var err error
	var recs map[int64]*Record
	waitUntil(t, 30*time.Second, "every impression counted", func() bool {
		recs, err = readRange(ctx, conn.JS, ScopeCampaign, "c0", hour, hour+1, tally.WithAudience)
		return err == nil && recs[hour] != nil && recs[hour].Totals.Impressions == 280
	})
	q, err := ParseQuery(ScopeCampaign, "c0", url.Values{}, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(q, recs)
	r := rep.Totals.Reach
	if r == nil || math.Abs(float64(r.Visitors)-100) > 2 || math.Abs(r.Frequency-2.5) > 0.05 {
		t.Fatalf("reach %+v, want 100 visitors at 2.5", r)
	}
	if rep.Totals.Audience != nil {
		t.Errorf("a campaign has no audience: %+v", rep.Totals.Audience)
	}
	t.Logf("280 impressions, 250 to 100 identifiable visitors: reach %+v", *r)

	// Reads leave no consumer behind: the server bounds them.
	st, err := conn.JS.Stream(ctx, bus.KVStream(bus.BucketStats))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := st.Info(ctx)
	for range 50 {
		if _, err := readRange(ctx, conn.JS, ScopeCampaign, "c0", hour, hour+1, 0); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := st.Info(ctx)
	if after.State.Consumers > before.State.Consumers {
		t.Errorf("%d consumers after 50 reads, %d before", after.State.Consumers, before.State.Consumers)
	}
}

// TestRealtime: the pageviews of the last five minutes and their visitors,
// from every aggregator's memory; an hour-old pageview is not live, and a
// publisher cannot see another's site.
func TestRealtime(t *testing.T) {
	w := newWorld(t, false)
	now := time.Now().UTC()
	var evs []event.Event
	for i := range 120 {
		evs = append(evs, event.Event{ID: event.NewID(), TS: now.Add(-time.Duration(i%4) * time.Minute).UnixMilli(), Kind: event.KindPageview,
			Site: "s0", Visitor: fmt.Sprintf("v%03d", i%40), URL: "https://s0.example/"})
	}
	evs = append(evs, event.Event{ID: event.NewID(), TS: now.Add(-time.Hour).UnixMilli(), Kind: event.KindPageview, Site: "s0", Visitor: "old"})
	publishEvents(t, w.conn.JS, evs, 20)
	startAggregator(t, w.conn.JS)
	startAggregator(t, w.conn.JS) // two: each answers for its partitions
	var rt Realtime
	waitUntil(t, 30*time.Second, "the live pageviews", func() bool {
		code, body, _ := w.do(t, "GET", "/v1/sites/s0/realtime", w.p1, "")
		return code == 200 && jsonInto(body, &rt) && rt.Pageviews == 120 && rt.Complete
	})
	if rt.Visitors < 39 || rt.Visitors > 41 || rt.Minutes != 5 {
		t.Errorf("realtime %+v, want 40 visitors", rt)
	}
	if code, _, _ := w.do(t, "GET", "/v1/sites/s2/realtime", w.p1, ""); code != 403 {
		t.Errorf("another publisher's site: %d", code)
	}
	t.Logf("realtime: %+v", rt)
}
