package stats

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
)

// testCPM is the CPM of every test campaign without a priced impression.
const testCPM = 2.5

func cpmOf(string) (float64, bool) { return testCPM, true }

// makeEvents returns n counted events of campaigns c0..c<camps-1> and sites
// s0..s<sites-1> over the hours before base, from a seeded generator so two
// servers get the same stream.
func makeEvents(n, camps, sites int, seed uint64, base time.Time) []event.Event {
	r := rand.New(rand.NewPCG(seed, 42))
	kinds := []event.Kind{event.KindImpression, event.KindImpression, event.KindImpression, event.KindImpression,
		event.KindViewable, event.KindViewable, event.KindClick, event.KindConversion, event.KindCall}
	langs := []string{"en", "ru", "de", "fr"}
	countries := []string{"RU", "DE", "US", "FR", ""}
	devices := []string{"desktop", "mobile", "tablet"}
	out := make([]event.Event, n)
	for i := range out {
		e := &out[i]
		for j := range e.ID {
			e.ID[j] = byte(r.Uint32())
		}
		e.Kind = kinds[r.IntN(len(kinds))]
		c := r.IntN(camps)
		e.Campaign = "c" + strconv.Itoa(c)
		e.Creative = fmt.Sprintf("cr%d-%d", c, r.IntN(3))
		e.Site = "s" + strconv.Itoa(r.IntN(sites))
		e.Slot = []string{"top", "side"}[r.IntN(2)]
		e.Visitor = "v" + strconv.Itoa(r.IntN(5000))
		e.Lang = langs[r.IntN(len(langs))]
		e.Country = countries[r.IntN(len(countries))]
		e.Device.Type = devices[r.IntN(len(devices))]
		// Late events: up to 5 hours before base.
		e.TS = base.Add(-time.Duration(r.IntN(5*3600)) * time.Second).UnixMilli()
		if e.Kind == event.KindImpression && r.IntN(2) == 0 {
			e.Value = 0.004
		}
		if e.Kind == event.KindCall {
			e.Value = 42
			e.Name = "inbound"
			e.Area = "+7 495"
			e.Visitor = ""
		}
	}
	return out
}

// expected sums events the way the records should: per record key, in the
// hour of each event's own timestamp.
func expected(events []event.Event) map[string]Counters {
	out := map[string]Counters{}
	for i := range events {
		e := &events[i]
		var c Counters
		switch e.Kind {
		case event.KindImpression:
			c.Impressions = 1
			if e.Value > 0 {
				c.SpendMicros = int64(e.Value*1e6 + 0.5)
			} else {
				c.SpendMicros = int64(testCPM * 1000)
			}
		case event.KindViewable:
			c.Viewable = 1
		case event.KindClick:
			c.Clicks = 1
		case event.KindConversion:
			c.Conversions = 1
		case event.KindCall:
			c.Calls, c.Conversions = 1, 1
		default:
			continue
		}
		ts := time.UnixMilli(e.TS)
		for _, k := range []string{Key(ScopeCampaign, e.Campaign, ts), Key(ScopeSite, e.Site, ts)} {
			cur := out[k]
			cur.Add(&c)
			out[k] = cur
		}
	}
	return out
}

// publishEvents publishes events batched by kind and partition, at most
// per events a message, each with the id of its first event. It returns the
// messages in order.
func publishEvents(t testing.TB, js jetstream.JetStream, events []event.Event, per int) []*nats.Msg {
	t.Helper()
	type sk struct {
		k event.Kind
		p int
	}
	groups := map[sk][]*event.Event{}
	var order []sk
	for i := range events {
		e := &events[i]
		k := sk{e.Kind, e.Partition(event.DefaultPartitions)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var msgs []*nats.Msg
	for _, k := range order {
		g := groups[k]
		for len(g) > 0 {
			n := min(per, len(g))
			m := nats.NewMsg(event.Subject(k.k, k.p))
			for _, e := range g[:n] {
				m.Data = e.AppendMsgpack(m.Data)
			}
			m.Header.Set(jetstream.MsgIDHeader, g[0].ID.String())
			m.Header.Set(event.HeaderCount, strconv.Itoa(n))
			msgs = append(msgs, m)
			g = g[n:]
		}
	}
	publishMsgs(t, js, msgs)
	return msgs
}

func publishMsgs(t testing.TB, js jetstream.JetStream, msgs []*nats.Msg) {
	t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("publish: no ack")
		}
	}
}

// records returns the totals of every record, by key, and checks that each
// breakdown adds up to its record's total.
func records(t testing.TB, js jetstream.JetStream) map[string]Counters {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Counters{}
	for _, pattern := range []string{"camp.*.*", "site.*.*"} {
		w, err := kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
		if err != nil {
			t.Fatal(err)
		}
		for e := range w.Updates() {
			if e == nil {
				break
			}
			rec, err := DecodeRecord(e.Value())
			if err != nil {
				t.Fatalf("%s: %v", e.Key(), err)
			}
			out[e.Key()] = rec.Totals
			// Every breakdown adds up to the total.
			for d, m := range rec.Dims {
				var sum Counters
				for _, v := range m {
					sum.Add(&v)
				}
				if len(m) > 0 && sum != rec.Totals {
					t.Errorf("%s: breakdown %s sums to %+v, total %+v", e.Key(), Dim(d), sum, rec.Totals)
				}
			}
		}
		_ = w.Stop()
	}
	return out
}

// waitTotals polls until the records equal want.
func waitTotals(t testing.TB, js jetstream.JetStream, want map[string]Counters, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[string]Counters
	for time.Now().Before(deadline) {
		got = records(t, js)
		if maps.Equal(got, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	keys := slices.Sorted(maps.Keys(want))
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] && bad < 5 {
			t.Errorf("%s: got %+v, want %+v", k, got[k], want[k])
			bad++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected record %s: %+v", k, got[k])
		}
	}
	t.Fatalf("records did not reach the expected totals within %s", timeout)
}

func startAggregator(t testing.TB, js jetstream.JetStream, opts ...Option) *Aggregator {
	t.Helper()
	a, err := New(js, append([]Option{WithCPM(cpmOf), WithFlush(200*time.Millisecond, 50000)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAggregator(t, a) })
	return a
}

func stopAggregator(t testing.TB, a *Aggregator) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
