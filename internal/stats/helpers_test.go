package stats

import (
	"context"
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

// mix is one campaign's events on one site in one hour, hoursAgo before
// the test's base hour: how many of each kind. Priced impressions carry a
// price of 0.004 (4,000 micros); the others are priced by testCPM (2,500
// micros). A call counts as a conversion too. Tests write the records they
// expect by hand from their mixes.
type mix struct {
	camp, site                                   string
	hoursAgo                                     int
	imps, priced, viewable, clicks, convs, calls int
}

// eventsOf returns the events of mixes, shuffled by seed, with breakdown
// values and visitors drawn from it so they spread over every partition.
func eventsOf(seed uint64, base time.Time, mixes ...mix) []event.Event {
	r := rand.New(rand.NewPCG(seed, 42))
	langs := []string{"en", "ru", "de", "fr"}
	countries := []string{"RU", "DE", "US", "FR", ""}
	devices := []string{"desktop", "mobile", "tablet"}
	var out []event.Event
	for _, m := range mixes {
		hour := hourAt(base, m.hoursAgo)
		for _, k := range []struct {
			kind  event.Kind
			n     int
			value float64
		}{
			{event.KindImpression, m.imps, 0}, {event.KindImpression, m.priced, 0.004},
			{event.KindViewable, m.viewable, 0}, {event.KindClick, m.clicks, 0},
			{event.KindConversion, m.convs, 0}, {event.KindCall, m.calls, 42},
		} {
			for range k.n {
				e := event.Event{
					Kind: k.kind, Value: k.value, Campaign: m.camp, Site: m.site,
					TS:       hour.Add(time.Duration(r.IntN(3600)) * time.Second).UnixMilli(),
					Creative: m.camp + "-cr" + strconv.Itoa(r.IntN(3)),
					Slot:     []string{"top", "side"}[r.IntN(2)],
					Visitor:  "v" + strconv.Itoa(r.IntN(5000)),
					Lang:     langs[r.IntN(len(langs))],
					Country:  countries[r.IntN(len(countries))],
				}
				for j := range e.ID {
					e.ID[j] = byte(r.Uint32())
				}
				e.Device.Type = devices[r.IntN(len(devices))]
				if k.kind == event.KindCall {
					e.Name, e.Area, e.Visitor = "inbound", "+7 495", ""
				}
				out = append(out, e)
			}
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// hourAt is the start of the hour hoursAgo before base's.
func hourAt(base time.Time, hoursAgo int) time.Time {
	return base.UTC().Truncate(time.Hour).Add(-time.Duration(hoursAgo) * time.Hour)
}

// campKey and siteKey name the records of a campaign or site hoursAgo
// before base's hour.
func campKey(id string, base time.Time, hoursAgo int) string {
	return Key(ScopeCampaign, id, hourAt(base, hoursAgo))
}

func siteKey(id string, base time.Time, hoursAgo int) string {
	return Key(ScopeSite, id, hourAt(base, hoursAgo))
}

// plus adds tables key by key.
func plus(tables ...map[string]Counters) map[string]Counters {
	out := map[string]Counters{}
	for _, t := range tables {
		for k, v := range t {
			c := out[k]
			c.Add(&v)
			out[k] = c
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
	out, err := readRecords(t, js)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readRecords is records, returning the errors of reading: right after a
// cluster restart the bucket may not answer yet.
func readRecords(t testing.TB, js jetstream.JetStream) (map[string]Counters, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		return nil, err
	}
	out := map[string]Counters{}
	for _, pattern := range []string{"camp.*.*", "site.*.*"} {
		w, err := kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
		if err != nil {
			return nil, err
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
	return out, nil
}

// waitTotals polls until the records equal want.
func waitTotals(t testing.TB, js jetstream.JetStream, want map[string]Counters, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[string]Counters
	for time.Now().Before(deadline) {
		var err error
		if got, err = readRecords(t, js); err != nil {
			t.Logf("read records: %v", err)
		} else if maps.Equal(got, want) {
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

func startAggregator(t testing.TB, js jetstream.JetStream, opts ...AggregatorOption) *Aggregator {
	t.Helper()
	a, err := New(js, append([]AggregatorOption{WithCPM(cpmOf), WithFlush(200*time.Millisecond, 50000)}, opts...)...)
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
