package adserver

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
)

// limitEdge is an edge on an embedded NATS with one campaign c1 on s1/side,
// every consent, and a clock the test moves.
func limitEdge(t *testing.T, opts ...EdgeOption) (*natsEdge, func(time.Duration)) {
	t.Helper()
	srv := bustest.StartServer(t)
	st, err := NewStore(testCtx(t), srv.Connect(t).JS)
	if err != nil {
		t.Fatal(err)
	}
	seedBasics(t, st, &Campaign{ID: "c1", Advertiser: "a1", Name: "C1", Start: start, CPM: 2})
	var mu sync.Mutex
	now := t0
	clock := WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ne := startEdge(t, srv, "e1", append([]EdgeOption{clock, WithConsent(func(*fasthttp.RequestCtx) consent.Set { return consent.All })}, opts...)...)
	waitFor(t, "campaign live", 10*time.Second, func() bool { return ne.ad(t, "site=s1&slot=side") == "c1" })
	ne.pub.mu.Lock()
	ne.pub.evs = nil // the warm-up answers are no part of the test
	ne.pub.mu.Unlock()
	return ne, advance
}

// answer asks for an ad as visitor u and returns its JSON.
func (ne *natsEdge) answer(t *testing.T, u string) adJSON {
	t.Helper()
	res, body := get(t, ne.base+"/ad?site=s1&slot=side&u="+u)
	var a adJSON
	if res.StatusCode != 200 {
		t.Fatalf("/ad: %d %s", res.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func (ne *natsEdge) metric(series string) string { return counter(ne.e.cfg.metrics, series) }

// TestReplayCountsOnce: an ad answer's viewable beacon and click count
// once, even replayed long after the stream's two-minute dedupe window;
// every replay is still answered, and counted on /metrics.
func TestReplayCountsOnce(t *testing.T) {
	ne, advance := limitEdge(t)
	a := ne.answer(t, "v1")
	for round := range 3 {
		for range 3 {
			if res, _ := get(t, a.Imp); res.StatusCode != 204 {
				t.Fatalf("round %d: /imp %d", round, res.StatusCode)
			}
			if res, _ := get(t, a.Click); res.StatusCode != 302 || res.Header.Get("Location") != "https://example.com/c1" {
				t.Fatalf("round %d: /click %d to %q", round, res.StatusCode, res.Header.Get("Location"))
			}
		}
		advance(3 * time.Hour) // well past the dedupe window, within the token's 24h
	}
	views, clicks := ne.pub.kinds(event.KindViewable), ne.pub.kinds(event.KindClick)
	if len(views) != 1 || len(clicks) != 1 {
		t.Fatalf("one ad answer counted %d viewables and %d clicks, want 1 and 1", len(views), len(clicks))
	}
	if got := ne.metric(`adsyn_ad_uncharged_total{reason="replay"}`); got != "16" {
		t.Errorf(`uncharged{reason="replay"} = %q, want 16 (9 beacons and 9 clicks, 2 of them counted)`, got)
	}
	if got := ne.metric(`adsyn_ad_clicks_total`); got != "1" {
		t.Errorf("clicks metric %q, want 1", got)
	}
	// Another answer's beacon is its own.
	b := ne.answer(t, "v1")
	get(t, b.Imp)
	if n := len(ne.pub.kinds(event.KindViewable)); n != 2 {
		t.Fatalf("a second answer's beacon: %d viewables, want 2", n)
	}
}

// TestVisitorCeiling: past its ceiling a visitor is still answered, but the
// impression is neither published, paced nor charged, and its beacon and
// click do not count; other visitors and the next minute are unaffected.
func TestVisitorCeiling(t *testing.T) {
	ne, advance := limitEdge(t, WithVisitorCeiling(3))
	paced := func() int64 { return ne.cat.pacer.live()["c1"].Imps }
	before := paced()
	var over adJSON
	for i := range 5 {
		over = ne.answer(t, "v1")
		if over.Campaign != "c1" {
			t.Fatalf("answer %d: campaign %q", i, over.Campaign)
		}
	}
	if n := len(ne.pub.kinds(event.KindImpression)); n != 3 {
		t.Fatalf("%d impressions published for 5 answers under a ceiling of 3", n)
	}
	if got := paced() - before; got != 3 {
		t.Fatalf("paced %d impressions, want 3", got)
	}
	if got := ne.metric(`adsyn_ad_uncharged_total{reason="visitor_ceiling"}`); got != "2" {
		t.Fatalf(`uncharged{reason="visitor_ceiling"} = %q, want 2`, got)
	}
	get(t, over.Imp)
	if res, _ := get(t, over.Click); res.StatusCode != 302 {
		t.Fatalf("click on an uncharged ad: %d, want the redirect", res.StatusCode)
	}
	if v, c := len(ne.pub.kinds(event.KindViewable)), len(ne.pub.kinds(event.KindClick)); v != 0 || c != 0 {
		t.Fatalf("an uncharged ad counted %d viewables and %d clicks", v, c)
	}
	if got := ne.metric(`adsyn_ad_uncharged_total{reason="visitor_ceiling"}`); got != "4" {
		t.Fatalf(`uncharged{reason="visitor_ceiling"} = %q after its beacon and click, want 4`, got)
	}

	ne.answer(t, "v2") // another visitor has a ceiling of their own
	advance(time.Minute)
	ne.answer(t, "v1") // and so does the next minute
	imps := ne.pub.kinds(event.KindImpression)
	if len(imps) != 5 || imps[3].Visitor != "v2" || imps[4].Visitor != "v1" {
		t.Fatalf("after another visitor and a minute: %d impressions %+v", len(imps), imps)
	}
}

func TestCountedMemory(t *testing.T) {
	id := func(b byte) event.ID { return event.ID{b} }
	c := newCounted(1000, 3)
	if c.first(id(1), 0) != charged || c.first(id(1), 10) != replay {
		t.Fatal("a second use is no replay")
	}
	c.mark(id(2), 10, visitorCeiling)
	if got := c.first(id(2), 20); got != visitorCeiling {
		t.Fatalf("marked id: %v", got)
	}
	// One lifetime on, the entry is in the previous generation: still known.
	if c.first(id(3), 1000) != charged || c.first(id(1), 1999) != replay {
		t.Fatal("forgotten within two lifetimes")
	}
	// Two lifetimes on, it is gone.
	if c.first(id(1), 2000) != charged {
		t.Fatal("remembered past two lifetimes")
	}
	// A full generation rotates early, and says so.
	for b := byte(10); b < 20; b++ {
		c.first(id(b), 2001)
	}
	if c.rotatedEarly() == 0 || len(c.cur) > 3 || len(c.prev) > 3 {
		t.Fatalf("size bound: %d early rotations, %d+%d entries", int(c.rotatedEarly()), len(c.cur), len(c.prev))
	}
}

func TestCeilingSharesNoCount(t *testing.T) {
	c := newCeiling(2)
	for i, want := range []bool{true, true, false, false} {
		if got := c.charge(7, 59_999); got != want {
			t.Fatalf("charge %d: %v", i, got)
		}
	}
	if !c.charge(8, 59_999) || !c.charge(7, 60_000) {
		t.Fatal("another visitor or the next minute is limited")
	}
	var none *ceiling
	if !none.charge(7, 0) {
		t.Fatal("no ceiling limits")
	}
}
