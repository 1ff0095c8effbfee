package stats

import (
	"context"
	"maps"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/bus/bustest"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

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
	msgs := publishEvents(t, conn.JS, eventsOf(1, base,
		mix{camp: "c1", site: "s1", hoursAgo: 0, imps: 400, priced: 100, viewable: 300, clicks: 60, convs: 20, calls: 10},
		mix{camp: "c2", site: "s1", hoursAgo: 1, imps: 300, viewable: 200, clicks: 40, convs: 10},
		mix{camp: "c3", site: "s2", hoursAgo: 2, imps: 200, priced: 50, viewable: 100, clicks: 30, convs: 5, calls: 5},
		mix{camp: "c1", site: "s2", hoursAgo: 4, imps: 100, viewable: 50, clicks: 10},
	), 50)
	// A call is a conversion too; spend is 2,500 micros an impression at
	// the test CPM, 4,000 a priced one.
	c1h0 := Counters{Impressions: 500, Viewable: 300, Clicks: 60, Conversions: 30, Calls: 10, SpendMicros: 1_400_000}
	c2h1 := Counters{Impressions: 300, Viewable: 200, Clicks: 40, Conversions: 10, SpendMicros: 750_000}
	c3h2 := Counters{Impressions: 250, Viewable: 100, Clicks: 30, Conversions: 10, Calls: 5, SpendMicros: 700_000}
	c1h4 := Counters{Impressions: 100, Viewable: 50, Clicks: 10, SpendMicros: 250_000}
	want := map[string]Counters{
		campKey("c1", base, 0): c1h0, siteKey("s1", base, 0): c1h0,
		campKey("c2", base, 1): c2h1, siteKey("s1", base, 1): c2h1,
		campKey("c3", base, 2): c3h2, siteKey("s2", base, 2): c3h2,
		campKey("c1", base, 4): c1h4, siteKey("s2", base, 4): c1h4,
	}

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
	// 3 impressions and 2 clicks of c5 on s5, published, then published
	// again under new ids: the impressions count twice, the clicks once (a
	// click's id is its token's).
	for _, m := range publishEvents(t, conn.JS, eventsOf(2, base, mix{camp: "c5", site: "s5", imps: 3, clicks: 2}), 50) {
		republished := nats.NewMsg(m.Subject)
		republished.Data = m.Data
		republished.Header = nats.Header{}
		republished.Header.Set(jetstream.MsgIDHeader, event.NewID().String())
		republished.Header.Set(event.HeaderCount, m.Header.Get(event.HeaderCount))
		if ack, err := conn.JS.PublishMsg(ctx, republished); err != nil || ack.Duplicate {
			t.Fatalf("republish under a new id: %v %+v", err, ack)
		}
	}
	c5 := Counters{Impressions: 6, Clicks: 2, SpendMicros: 15_000}
	want[campKey("c5", base, 0)], want[siteKey("s5", base, 0)] = c5, c5

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
	opts := []AggregatorOption{WithCPM(cpmOf), WithFlush(200*time.Millisecond, 50000), WithAckWait(time.Second, 2*time.Second)}
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
	// Each wave is 2,000 events with these records.
	wave := func(seed uint64) []event.Event {
		return eventsOf(seed, base,
			mix{camp: "c1", site: "s1", hoursAgo: 0, imps: 600, priced: 200, viewable: 400, clicks: 100, convs: 50, calls: 20},
			mix{camp: "c2", site: "s1", hoursAgo: 2, imps: 400, viewable: 200, clicks: 30},
		)
	}
	c1 := Counters{Impressions: 800, Viewable: 400, Clicks: 100, Conversions: 70, Calls: 20, SpendMicros: 2_300_000}
	c2 := Counters{Impressions: 400, Viewable: 200, Clicks: 30, SpendMicros: 1_000_000}
	oneWave := map[string]Counters{
		campKey("c1", base, 0): c1, siteKey("s1", base, 0): c1,
		campKey("c2", base, 2): c2, siteKey("s1", base, 2): c2,
	}

	// 1. The first messages are nakked after their records are written:
	// JetStream delivers them again at once.
	publishEvents(t, conn.JS, wave(2), 40)
	want := oneWave
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
	publishEvents(t, conn.JS, wave(3), 40)
	want = plus(want, oneWave)
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
	publishEvents(t, conn.JS, wave(4), 40)
	want = plus(want, oneWave)
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
	// Three waves (6,000, 3,000 and 3,000 events) and a filler of 300
	// published while the aggregators find each other, each with the records
	// it adds, worked out by hand.
	waves := []struct {
		events []event.Event
		adds   map[string]Counters
	}{
		{eventsOf(10, base,
			mix{camp: "c1", site: "s1", hoursAgo: 0, imps: 1500, priced: 500, viewable: 1500, clicks: 300, convs: 150, calls: 50},
			mix{camp: "c2", site: "s2", hoursAgo: 1, imps: 1000, viewable: 800, clicks: 150, convs: 50},
		), map[string]Counters{
			campKey("c1", base, 0): {Impressions: 2000, Viewable: 1500, Clicks: 300, Conversions: 200, Calls: 50, SpendMicros: 5_750_000},
			siteKey("s1", base, 0): {Impressions: 2000, Viewable: 1500, Clicks: 300, Conversions: 200, Calls: 50, SpendMicros: 5_750_000},
			campKey("c2", base, 1): {Impressions: 1000, Viewable: 800, Clicks: 150, Conversions: 50, SpendMicros: 2_500_000},
			siteKey("s2", base, 1): {Impressions: 1000, Viewable: 800, Clicks: 150, Conversions: 50, SpendMicros: 2_500_000},
		}},
		{eventsOf(11, base,
			mix{camp: "c3", site: "s1", hoursAgo: 2, imps: 1000, priced: 200, viewable: 600, clicks: 150, convs: 40, calls: 10},
			mix{camp: "c1", site: "s2", hoursAgo: 0, imps: 600, viewable: 300, clicks: 100},
		), map[string]Counters{
			campKey("c3", base, 2): {Impressions: 1200, Viewable: 600, Clicks: 150, Conversions: 50, Calls: 10, SpendMicros: 3_300_000},
			siteKey("s1", base, 2): {Impressions: 1200, Viewable: 600, Clicks: 150, Conversions: 50, Calls: 10, SpendMicros: 3_300_000},
			campKey("c1", base, 0): {Impressions: 600, Viewable: 300, Clicks: 100, SpendMicros: 1_500_000},
			siteKey("s2", base, 0): {Impressions: 600, Viewable: 300, Clicks: 100, SpendMicros: 1_500_000},
		}},
		{eventsOf(12, base,
			mix{camp: "c2", site: "s2", hoursAgo: 1, imps: 1500, viewable: 1000, clicks: 300, convs: 100, calls: 100},
		), map[string]Counters{
			campKey("c2", base, 1): {Impressions: 1500, Viewable: 1000, Clicks: 300, Conversions: 200, Calls: 100, SpendMicros: 3_750_000},
			siteKey("s2", base, 1): {Impressions: 1500, Viewable: 1000, Clicks: 300, Conversions: 200, Calls: 100, SpendMicros: 3_750_000},
		}},
	}
	filler := func(seed uint64) []event.Event {
		return eventsOf(seed, base, mix{camp: "c4", site: "s3", hoursAgo: 3, imps: 200, viewable: 80, clicks: 20})
	}
	fillerAdds := map[string]Counters{
		campKey("c4", base, 3): {Impressions: 200, Viewable: 80, Clicks: 20, SpendMicros: 500_000},
		siteKey("s3", base, 3): {Impressions: 200, Viewable: 80, Clicks: 20, SpendMicros: 500_000},
	}
	single := bustest.StartServer(t).Connect(t)
	pair := bustest.StartServer(t)
	pa, pb := pair.Connect(t), pair.Connect(t)
	one := startAggregator(t, single.JS)
	a := startAggregator(t, pa.JS)
	b := startAggregator(t, pb.JS)

	want := map[string]Counters{}
	publish := func(ev []event.Event, adds map[string]Counters) {
		publishEvents(t, single.JS, ev, 25)
		publishEvents(t, pa.JS, ev, 25)
		want = plus(want, adds)
	}
	publish(waves[0].events, waves[0].adds)
	// Both aggregators get partitions once they see each other; a partition
	// is pinned when a message is delivered, so keep events flowing.
	seed := uint64(100)
	waitUntil(t, 40*time.Second, "both aggregators to own partitions", func() bool {
		if a.ownedCount() > 0 && b.ownedCount() > 0 {
			return true
		}
		seed++
		publish(filler(seed), fillerAdds)
		time.Sleep(200 * time.Millisecond)
		return false
	})
	t.Logf("owned: %d and %d of %d partitions", a.ownedCount(), b.ownedCount(), event.DefaultPartitions)
	publish(waves[1].events, waves[1].adds)
	waitTotals(t, single.JS, want, 30*time.Second)
	waitTotals(t, pa.JS, want, 30*time.Second)

	// One stops; the other takes its partitions.
	stopAggregator(t, a)
	publish(waves[2].events, waves[2].adds)
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
		ev := []event.Event{{ID: event.NewID(), TS: time.Now().UnixMilli(), Kind: event.KindImpression, Campaign: "c0", Site: "s0", Visitor: "v" + strconv.Itoa(i)}}
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
	// 1,000 events in each of two waves.
	wave := func(seed uint64) []event.Event {
		return eventsOf(seed, base, mix{camp: "c1", site: "s1", hoursAgo: 0, imps: 500, viewable: 300, clicks: 100, convs: 50, calls: 50})
	}
	c1 := Counters{Impressions: 500, Viewable: 300, Clicks: 100, Conversions: 100, Calls: 50, SpendMicros: 1_250_000}
	oneWave := map[string]Counters{campKey("c1", base, 0): c1, siteKey("s1", base, 0): c1}
	publishEvents(t, conn.JS, wave(60), 20)
	want := oneWave
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
	publishEvents(t, conn.JS, wave(61), 20)
	want = plus(want, oneWave)
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

// A record written by someone else since this aggregator cached it makes
// its asynchronous update lose the compare-and-set: the record is read
// again and the batch merged into it, so nothing is lost or counted twice.
func TestLostUpdateMergedAgain(t *testing.T) {
	conn := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := metrics.NewRegistry()
	a := startAggregator(t, conn.JS, WithMetrics(reg))
	kv, err := conn.JS.KeyValue(ctx, bus.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	imps := func(n int) []event.Event {
		var evs []event.Event
		for i := range n {
			evs = append(evs, event.Event{ID: event.NewID(), TS: now.UnixMilli(), Kind: event.KindImpression, Campaign: "c0", Site: "s0", Visitor: "v" + strconv.Itoa(i)})
		}
		return evs
	}
	key := Key(ScopeCampaign, "c0", now)
	impressions := func() int64 {
		e, err := kv.Get(ctx, key)
		if err != nil {
			return -1
		}
		r, err := DecodeRecord(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		return r.Totals.Impressions
	}
	publishEvents(t, conn.JS, imps(30), 10)
	waitUntil(t, 30*time.Second, "30 impressions applied", func() bool { return a.Applied() == 30 })
	// Another writer: the same value at a new revision.
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key, e.Value()); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, conn.JS, imps(20), 10)
	waitUntil(t, 30*time.Second, "50 impressions applied", func() bool { return a.Applied() == 50 })
	if got := impressions(); got != 50 {
		t.Fatalf("the record counts %d impressions, want 50", got)
	}
	if n := counterValue(t, reg, "adsyn_stats_record_conflicts_total"); n < 1 {
		t.Errorf("%v lost compare-and-sets, want at least 1: the update did not meet the other write", n)
	}
}

// A consumer's first delivery goes to the aggregator that made it: nothing
// can be pending elsewhere, so a new aggregator on a backlog admits at once,
// without a settle check holding its pulls back. Restarted, it finds its
// consumers and settles as after a takeover; every event counts once.
func TestNewConsumerAdmitsAtOnce(t *testing.T) {
	conn := bustest.Start(t)
	base := time.Now().UTC()
	publishEvents(t, conn.JS, eventsOf(7, base, mix{camp: "c1", site: "s1", imps: 3000, clicks: 200}), 20)
	first := Counters{Impressions: 3000, Clicks: 200, SpendMicros: 7_500_000}
	a := startAggregator(t, conn.JS)
	waitTotals(t, conn.JS, map[string]Counters{campKey("c1", base, 0): first, siteKey("s1", base, 0): first}, 30*time.Second)
	if n := a.m.waits.Load(); n != 0 {
		t.Errorf("a new aggregator on new consumers waited on %d settle checks", n)
	}
	stopAggregator(t, a)

	publishEvents(t, conn.JS, eventsOf(8, base, mix{camp: "c1", site: "s1", imps: 1000}), 20)
	both := Counters{Impressions: 4000, Clicks: 200, SpendMicros: 10_000_000}
	startAggregator(t, conn.JS)
	waitTotals(t, conn.JS, map[string]Counters{campKey("c1", base, 0): both, siteKey("s1", base, 0): both}, 30*time.Second)
}
