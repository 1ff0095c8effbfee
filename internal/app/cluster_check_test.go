package app_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats"
	"github.com/adsyn/adsyn/segments"
)

// loadVisitors are the returning visitors of the load: each has a cookie,
// so the builders keep a record of each. At about one event a second each,
// a visitor has fewer messages within the builders' ack wait (30 s, the
// delay of a redelivery after a kill -9) than a record remembers (64).
var loadVisitors = func() []string {
	out := make([]string, 240)
	for i := range out {
		out[i] = fmt.Sprintf("loadvisitor-%010d", i) // 22 characters, as the edge issues
	}
	return out
}()

const (
	loadSenders = 4
	loadPace    = 4 * time.Millisecond // each sender's pause: about 1,000 hits/s in all
	loadSite    = "s1"
)

// load sends pixel hits through both edges, one in four a conversion, from
// returning visitors, and changes profiles that partners receive, until stop
// closes. It counts the answered hits.
func (c *cluster) load(t *testing.T, stop <-chan struct{}) (done func()) {
	var wg sync.WaitGroup
	for w := range loadSenders {
		wg.Go(func() {
			client := &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				conv := i%4 == 0
				url := "http://" + c.edges[(w+i)%2].EdgeAddr() + "/p.gif?site=" + loadSite + "&c=home-repair&u=" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if conv {
					url += "&e=conversion"
				}
				req.Reset()
				req.SetRequestURI(url)
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
				req.Header.Set("Cookie", "uid="+loadVisitors[(w*7+i)%len(loadVisitors)])
				err := client.Do(req, res)
				if err != nil || res.StatusCode() != 200 || len(res.Body()) != 43 {
					t.Errorf("pixel: %d %v (the edge must answer its GIF whatever happens)", res.StatusCode(), err)
					return
				}
				c.answered.Add(1)
				if conv {
					c.conversions.Add(1)
				}
				time.Sleep(loadPace) // paced, so that the load spans the fault
			}
		})
	}
	wg.Go(func() { c.parts.churn(t, stop) })
	return wg.Wait
}

// stored is what ADSYN_EVENTS holds.
type stored struct {
	events, twice, pixel, conversions int64
	impressions                       map[string]int64 // by campaign
	visitors                          map[string]*replayed
}

// replayed is a visitor record as replaying the stored events gives it,
// with the builder's rules: returning visitors with profiling consent.
type replayed struct {
	events   uint64
	lastSeen int64
	imps     map[string][]int64 // impression times by campaign
	seqs     []uint64           // stream sequences of the messages holding its events
}

func readStored(ctx context.Context, js jetstream.JetStream) (*stored, error) {
	s := &stored{impressions: map[string]int64{}, visitors: map[string]*replayed{}}
	ids := map[event.ID]bool{}
	_, err := bus.ReadEvents(ctx, js, 1, func(seq uint64, e *event.Event) error {
		s.events++
		if ids[e.ID] {
			s.twice++
		}
		ids[e.ID] = true
		switch e.Kind {
		case event.KindPageview:
			s.pixel++
		case event.KindConversion:
			s.pixel++
			s.conversions++
		case event.KindImpression:
			s.impressions[e.Campaign]++
		}
		if e.Visitor == "" || e.NewVisitor || !e.Consent.Allow(consent.BuildProfile) || !segments.ValidVisitor(e.Visitor) {
			return nil
		}
		r := s.visitors[e.Visitor]
		if r == nil {
			r = &replayed{imps: map[string][]int64{}}
			s.visitors[e.Visitor] = r
		}
		r.events++
		r.seqs = append(r.seqs, seq)
		r.lastSeen = max(r.lastSeen, e.TS)
		if e.Kind == event.KindImpression {
			r.imps[e.Campaign] = append(r.imps[e.Campaign], e.TS)
		}
		return nil
	})
	return s, err
}

// check waits for the edges' publishers to settle and every consumer to
// drain, then checks, and prints, that every answered event is stored
// exactly once, statistics equal the events, visitor records equal a replay
// of the events, and partners hold what profiles and consents say.
func (c *cluster) check(t *testing.T, name string) {
	t.Helper()
	began := time.Now()
	settle := 90 * time.Second
	if faultTests {
		settle = 5 * time.Minute // a partner back after two minutes waits out its backoff
	}
	ctx, cancel := context.WithTimeout(context.Background(), settle+60*time.Second)
	defer cancel()
	answered, conversions, ads := c.answered.Load(), c.conversions.Load(), c.ads.Load()
	var acked, dropped uint64
	waitFor(t, 60*time.Second, "the edges' publishers to settle", func() bool {
		acked, dropped = 0, 0
		for _, e := range c.edges {
			st := e.Publisher().Stats()
			if st.Inflight != 0 {
				return false
			}
			acked += st.Acked
			dropped += st.Dropped
		}
		return true
	})
	var st *stored
	// Right after a fault the cluster may not answer yet: read again.
	waitFor(t, 60*time.Second, "the stream to be read", func() bool {
		var err error
		st, err = readStored(ctx, c.conn.JS)
		if err != nil {
			t.Logf("%s: read events: %v", name, err)
		}
		return err == nil
	})
	var (
		site     stats.Counters
		pending  map[string][2]uint64
		busy     []string
		partners string
		err      error
	)
	deadline, waited := time.Now().Add(settle), time.Now()
	for {
		busy = busy[:0]
		pending, err = bustest.PendingAll(ctx, c.conn.JS)
		for name, p := range pending {
			if p != [2]uint64{} {
				busy = append(busy, fmt.Sprintf("%s %d undelivered %d unacknowledged", name, p[0], p[1]))
			}
		}
		site = statTotals(t, ctx, c.conn.JS, stats.ScopeSite, loadSite)
		partners = c.parts.converged(t, ctx)
		if err == nil && len(busy) == 0 && site.Conversions == st.conversions && partners == "" {
			break
		}
		if time.Since(waited) > 5*time.Second {
			waited = time.Now()
			t.Logf("%s: still waiting: consumers with work %v %v; conversions stored %d, counted %d; partners: %s",
				name, busy, err, st.conversions, site.Conversions, partners)
		}
		if time.Now().After(deadline) {
			slices.Sort(busy)
			t.Fatalf("%s: after %s: consumers with work %v %v; conversions stored %d, counted %d; partners: %s",
				name, settle, busy, err, st.conversions, site.Conversions, partners)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var imps int64
	for _, n := range st.impressions {
		imps += n
	}
	t.Logf("%s: answered %d hits (%d conversions) and %d ads; edges acknowledged %d, dropped %d; stored %d (%d twice): %d hits, %d conversions, %d impressions; counted %d conversions of site %s",
		name, answered, conversions, ads, acked, dropped, st.events, st.twice, st.pixel, st.conversions, imps, site.Conversions, loadSite)
	if st.events != answered+ads || st.twice != 0 || dropped != 0 || int64(acked) != answered+ads ||
		st.pixel != answered || imps != ads || st.conversions != conversions || site.Conversions != conversions {
		t.Fatalf("%s: every answered event must be stored once and counted once", name)
	}
	t.Logf("%s: %d durable consumers, none with work left", name, len(pending))
	c.checkVisitors(t, ctx, name, st)
	c.parts.checkRecords(t, ctx, name, c)
	t.Logf("%s: checked in %s", name, time.Since(began).Round(time.Millisecond))
}

// checkVisitors compares every returning visitor's record with a replay of
// the stored events: events counted, last seen, impression times.
func (c *cluster) checkVisitors(t *testing.T, ctx context.Context, name string, st *stored) {
	t.Helper()
	kv, err := c.conn.JS.KeyValue(ctx, bus.BucketSegments)
	if err != nil {
		t.Fatal(err)
	}
	var events uint64
	for v, want := range st.visitors {
		e, err := kv.Get(ctx, v)
		if err != nil {
			t.Fatalf("%s: visitor %s: %v (the replay has %d events)", name, v, err, want.events)
		}
		var r segments.Record
		if err := segments.DecodeRecord(e.Value(), &r); err != nil {
			t.Fatalf("%s: visitor %s: %v", name, v, err)
		}
		if r.Events != want.events || r.LastSeen != want.lastSeen {
			// What led there: each revision of the record, and the messages
			// holding the visitor's events.
			if hist, err := kv.History(ctx, v); err == nil {
				for _, h := range hist {
					var hr segments.Record
					_ = segments.DecodeRecord(h.Value(), &hr)
					t.Logf("%s: visitor %s: revision %d (%s): %d events, applied %v", name, v, h.Revision(), h.Operation(), hr.Events, hr.Applied)
				}
			}
			t.Logf("%s: visitor %s: its events are in messages %v", name, v, want.seqs)
			t.Fatalf("%s: visitor %s: record has %d events, last seen %d; the replay %d, %d",
				name, v, r.Events, r.LastSeen, want.events, want.lastSeen)
		}
		got := map[string][]int64{}
		for _, cp := range r.Caps {
			got[cp.Campaign] = cp.Times
		}
		for camp, times := range want.imps {
			slices.Sort(times)
			if !slices.Equal(got[camp], times) {
				t.Fatalf("%s: visitor %s: impressions of %s at %v; the replay %v", name, v, camp, got[camp], times)
			}
		}
		if len(got) != len(want.imps) {
			t.Fatalf("%s: visitor %s: impressions of %d campaigns; the replay %d", name, v, len(got), len(want.imps))
		}
		events += r.Events
	}
	if len(st.visitors) < len(loadVisitors) {
		t.Fatalf("%s: only %d returning visitors in the stream", name, len(st.visitors))
	}
	t.Logf("%s: %d visitor records equal the replay of their %d events", name, len(st.visitors), events)
}

// statTotals sums the counters of every hourly record of a campaign or site.
func statTotals(t *testing.T, ctx context.Context, js jetstream.JetStream, scope stats.Scope, id string) stats.Counters {
	var sum stats.Counters
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return stats.Counters{Conversions: -1}
	}
	w, err := kv.Watch(ctx, scope.Prefix()+"."+id+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return stats.Counters{Conversions: -1}
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			break
		}
		rec, err := stats.DecodeRecord(e.Value())
		if err != nil {
			t.Fatalf("%s: %v", e.Key(), err)
		}
		sum.Impressions += rec.Totals.Impressions
		sum.Conversions += rec.Totals.Conversions
		sum.Clicks += rec.Totals.Clicks
	}
	return sum
}
