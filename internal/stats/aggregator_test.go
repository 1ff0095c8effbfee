package stats

import (
	"context"
	"maps"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adsyn/adsyn/internal/stats/tally"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
)

func addTo(dst, src map[string]Counters) {
	for k, v := range src {
		c := dst[k]
		c.Add(&v)
		dst[k] = c
	}
}

func decodeMsg(t *testing.T, m *nats.Msg) []event.Event {
	t.Helper()
	var out []event.Event
	if _, err := event.DecodeBatch(m.Data, func(e *event.Event) error {
		c := *e
		c.Categories = nil
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Same Nats-Msg-Id within the dedupe window is stored once; a copy under a
// new id is another message and counts again. Late events land in their own
// hour.
func TestDuplicatesCountedOnce(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.Now().UTC()
	events := makeEvents(3000, 20, 5, 1, base)
	msgs := publishEvents(t, conn.JS, events, 50)
	want := expected(events)

	for _, m := range msgs[:10] {
		again := nats.NewMsg(m.Subject)
		again.Data, again.Header = m.Data, m.Header
		ack, err := conn.JS.PublishMsg(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Duplicate {
			t.Fatalf("same Nats-Msg-Id stored twice (seq %d)", ack.Sequence)
		}
	}
	republished := nats.NewMsg(msgs[10].Subject)
	republished.Data = msgs[10].Data
	republished.Header = nats.Header{}
	republished.Header.Set(jetstream.MsgIDHeader, event.NewID().String())
	republished.Header.Set(event.HeaderCount, msgs[10].Header.Get(event.HeaderCount))
	if ack, err := conn.JS.PublishMsg(ctx, republished); err != nil || ack.Duplicate {
		t.Fatalf("republish under a new id: %v %+v", err, ack)
	}
	// Its clicks are not counted again: a click's id is its token's.
	var again []event.Event
	for _, e := range decodeMsg(t, msgs[10]) {
		if e.Kind != event.KindClick {
			again = append(again, e)
		}
	}
	addTo(want, expected(again))

	hours := map[int64]bool{}
	for k := range want {
		h, _ := tally.ParseHour(k)
		hours[h] = true
	}
	if len(hours) < 3 {
		t.Fatalf("test data spans %d hours, want late events over several", len(hours))
	}
	a := startAggregator(t, conn.JS)
	waitTotals(t, conn.JS, want, 30*time.Second)
	if a.m.bad.Load() != 0 {
		t.Errorf("%d bad messages", a.m.bad.Load())
	}
}

// Redeliveries after a nak and after the ack wait, regrouped into other
// flushes by another aggregator, are counted once.
func TestRedeliveriesCountedOnce(t *testing.T) {
	conn := bustest.Start(t)
	base := time.Now().UTC()
	opts := []Option{WithCPM(cpmOf), WithFlush(200*time.Millisecond, 50000), WithAckWait(time.Second, 2*time.Second)}
	start := func(ackFn func(jetstream.Msg) error) *Aggregator {
		a, err := New(conn.JS, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if ackFn != nil {
			a.ackFn = ackFn
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a
	}

	// 1. The first messages are nakked after their records are written:
	// JetStream delivers them again at once.
	ev1 := makeEvents(2000, 10, 4, 2, base)
	publishEvents(t, conn.JS, ev1, 40)
	want := expected(ev1)
	var naks atomic.Int64
	a := start(func(m jetstream.Msg) error {
		if naks.Add(1) <= 30 {
			return m.Nak()
		}
		return m.Ack()
	})
	waitTotals(t, conn.JS, want, 30*time.Second)
	waitUntil(t, 20*time.Second, "nakked messages to come back", func() bool { return a.m.duplicates.Load() > 0 })
	stopAggregator(t, a)
	waitTotals(t, conn.JS, want, 5*time.Second)

	// 2. An aggregator writes but never acknowledges, then stops.
	ev2 := makeEvents(2000, 10, 4, 3, base)
	publishEvents(t, conn.JS, ev2, 40)
	addTo(want, expected(ev2))
	b := start(func(jetstream.Msg) error { return nil })
	waitTotals(t, conn.JS, want, 30*time.Second)
	stopAggregator(t, b)
	// As if it had stopped after writing records and before its checkpoints:
	// the next aggregator must find what is applied in the records themselves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	for p := range event.DefaultPartitions {
		if err := kv.Purge(ctx, b.checkpointKey(p)); err != nil {
			t.Fatal(err)
		}
	}

	// 3. More events; the next aggregator gets the unacknowledged ones again
	// after the ack wait, with the new ones, in flushes of its own.
	ev3 := makeEvents(2000, 10, 4, 4, base)
	publishEvents(t, conn.JS, ev3, 40)
	addTo(want, expected(ev3))
	c := start(nil)
	defer stopAggregator(t, c)
	waitTotals(t, conn.JS, want, 40*time.Second)
	t.Logf("third aggregator: %d duplicate messages, %d records recomputed, %d takeover waits",
		c.m.duplicates.Load(), c.m.recompute.Load(), c.m.waits.Load())
	if c.m.recompute.Load() == 0 {
		t.Error("no record was recomputed: the redelivered messages did not meet their records")
	}
}

func (a *Aggregator) ownedCount() int {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return len(a.owned)
}

// fullRecords returns every campaign and site record without its sequences.
func fullRecords(t *testing.T, js jetstream.JetStream) map[string]*Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Record{}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if _, ok := tally.ParseHour(e.Key()); !ok {
			continue
		}
		r, err := DecodeRecord(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = nil
		out[e.Key()] = r
	}
	return out
}

// Two aggregators split the partitions, one takes over when the other
// stops, and the records equal those of a single aggregator.
func TestTwoAggregatorsMatchOne(t *testing.T) {
	base := time.Now().UTC()
	waves := [][]event.Event{
		makeEvents(6000, 30, 6, 10, base),
		makeEvents(3000, 30, 6, 11, base),
		makeEvents(3000, 30, 6, 12, base),
	}
	single := bustest.StartServer(t).Connect(t)
	pair := bustest.StartServer(t)
	pa, pb := pair.Connect(t), pair.Connect(t)
	one := startAggregator(t, single.JS)
	a := startAggregator(t, pa.JS)
	b := startAggregator(t, pb.JS)

	want := map[string]Counters{}
	publish := func(ev []event.Event) {
		publishEvents(t, single.JS, ev, 25)
		publishEvents(t, pa.JS, ev, 25)
		addTo(want, expected(ev))
	}
	publish(waves[0])
	// Both aggregators get partitions once they see each other; a partition
	// is pinned when a message is delivered, so keep events flowing.
	seed := uint64(100)
	waitUntil(t, 40*time.Second, "both aggregators to own partitions", func() bool {
		if a.ownedCount() > 0 && b.ownedCount() > 0 {
			return true
		}
		seed++
		publish(makeEvents(300, 30, 6, seed, base))
		time.Sleep(200 * time.Millisecond)
		return false
	})
	t.Logf("owned: %d and %d of %d partitions", a.ownedCount(), b.ownedCount(), event.DefaultPartitions)
	publish(waves[1])
	waitTotals(t, single.JS, want, 30*time.Second)
	waitTotals(t, pa.JS, want, 30*time.Second)

	// One stops; the other takes its partitions.
	stopAggregator(t, a)
	publish(waves[2])
	waitTotals(t, single.JS, want, 30*time.Second)
	waitTotals(t, pb.JS, want, 30*time.Second)
	if b.ownedCount() != event.DefaultPartitions {
		t.Logf("after takeover b owns %d partitions", b.ownedCount())
	}

	r1, r2 := fullRecords(t, single.JS), fullRecords(t, pb.JS)
	if len(r1) != len(r2) {
		t.Fatalf("%d records with one aggregator, %d with two", len(r1), len(r2))
	}
	for k, x := range r1 {
		y := r2[k]
		if y == nil || x.Totals != y.Totals {
			t.Fatalf("%s differs: %+v vs %+v", k, x, y)
		}
		for d := range x.Dims {
			if !maps.Equal(x.Dims[d], y.Dims[d]) {
				t.Fatalf("%s breakdown %s differs", k, Dim(d))
			}
		}
	}
	_ = one
}

// With the default flush settings an event shows in its record within a
// few seconds (the figure is logged; tests do not assert timings).
func TestCountsVisibleSoon(t *testing.T) {
	conn := bustest.Start(t)
	a, err := New(conn.JS, WithCPM(cpmOf))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopAggregator(t, a)
	ctx := context.Background()
	kv, _ := conn.JS.KeyValue(ctx, bus.BucketStats)
	for i := range 3 {
		ev := makeEvents(1, 1, 1, uint64(50+i), time.Now())
		ev[0].TS = time.Now().UnixMilli()
		key := Key(ScopeCampaign, ev[0].Campaign, time.UnixMilli(ev[0].TS))
		before := int64(0)
		if e, err := kv.Get(ctx, key); err == nil {
			r, _ := DecodeRecord(e.Value())
			before = r.Totals.Impressions + r.Totals.Viewable + r.Totals.Clicks + r.Totals.Conversions
		}
		start := time.Now()
		publishEvents(t, conn.JS, ev, 1)
		waitUntil(t, 30*time.Second, "the event in its record", func() bool {
			e, err := kv.Get(ctx, key)
			if err != nil {
				return false
			}
			r, _ := DecodeRecord(e.Value())
			return r.Totals.Impressions+r.Totals.Viewable+r.Totals.Clicks+r.Totals.Conversions > before
		})
		t.Logf("event %d visible after %s", i, time.Since(start).Round(time.Millisecond))
	}
}

// An operator deleting the consumers does not stop the counting, nor make
// it count twice: the consumers are made again from their checkpoints.
func TestConsumersMadeAgain(t *testing.T) {
	conn := bustest.Start(t)
	ctx := context.Background()
	base := time.Now().UTC()
	ev1 := makeEvents(1000, 5, 2, 60, base)
	publishEvents(t, conn.JS, ev1, 20)
	want := expected(ev1)
	a := startAggregator(t, conn.JS)
	waitTotals(t, conn.JS, want, 30*time.Second)
	s, err := conn.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for p := range event.DefaultPartitions {
		if err := s.DeleteConsumer(ctx, a.ConsumerName(p)); err != nil {
			t.Fatal(err)
		}
	}
	ev2 := makeEvents(1000, 5, 2, 61, base)
	publishEvents(t, conn.JS, ev2, 20)
	addTo(want, expected(ev2))
	waitTotals(t, conn.JS, want, 40*time.Second)
}

// A hammered click token (its event id fixed) leading batches neither erases
// other clicks nor counts more than once, whichever partitions and
// aggregators it goes through: 10 genuine clicks and the replayed one are 11.
func TestReplayedClickCountedOnce(t *testing.T) {
	conn := bustest.Start(t)
	pub, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{Partitions: event.DefaultPartitions})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UnixMilli()
	replayed := event.NewID()
	click := func(id event.ID, visitor string) *event.Event {
		return &event.Event{ID: id, TS: ts, Kind: event.KindClick, Campaign: "c1", Site: "s1", Visitor: visitor}
	}
	for i := range 200 {
		// The replay comes from several browsers, so several partitions.
		pub.Publish(click(replayed, "hammer"+strconv.Itoa(i%7)))
		if i%20 == 0 {
			pub.Publish(click(event.NewID(), "hammer"+strconv.Itoa(i%7)))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Dropped != 0 || st.Acked != 210 {
		t.Fatalf("publisher %+v, want 210 acknowledged and none dropped", st)
	}
	startAggregator(t, conn.JS)
	startAggregator(t, conn.JS)
	hour := time.UnixMilli(ts)
	want := map[string]Counters{Key(ScopeCampaign, "c1", hour): {Clicks: 11}, Key(ScopeSite, "s1", hour): {Clicks: 11}}
	waitTotals(t, conn.JS, want, 30*time.Second)
	waitUntil(t, 20*time.Second, "every stats consumer to be drained", func() bool {
		pending, err := bustest.Pending(ctx, conn.JS, bus.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pending {
			if p != [2]uint64{} {
				return false
			}
		}
		return len(pending) > 0
	})
	if got := records(t, conn.JS); !maps.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}
