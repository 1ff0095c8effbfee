package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// SegmentsOptions shape the segments scenario beyond Options; tests shrink it.
type SegmentsOptions struct {
	Visitors int    // distinct visitors (default 100,000)
	Seed     uint64 // of the generated events (default: the clock)
}

// builderInflight is the segment builder's default bound on record writes
// in flight (segments.WithMaxInflight): the ceiling keeps as many.
const builderInflight = 4096

// ceilingKeys is how many records a ceiling round writes in turn: most of
// its writes update a record written before, as most of the builder's do (a
// visitor's first write creates the record, the others update it); an
// update also makes the server remove the revision it replaces. Far more
// than builderInflight, so that a key's last write is answered before the
// key comes round again.
const ceilingKeys = 32768

// segmentsRun is one run of the segments scenario.
type segmentsRun struct {
	conn     *bus.Conn
	g        *segGen
	builder  *segments.Builder
	errs     chan error
	progress io.Writer
}

// Segments measures the segment builder, events from ADSYN_EVENTS to visitor
// records in adsyn_segments, in rounds that alternate with its ceiling: bare
// compare-and-set writes of records of the same size to the same bucket, most
// of them updates as most of the builder's are (ceilingKeys), with
// as many writes in flight as the builder allows itself. Both pipeline: the
// builder sends a batch's writes asynchronously and then collects their
// answers, so the ceiling does too (a sequential writer, one answer awaited
// per write, is a lower bar); on one server neither sends a message id. Writes are compared
// with writes; events per second are reported beside. In a builder round the
// events are published as the edge publishes them while the builder runs,
// never more than maxLag ahead of it: it always has work but drains no
// backlog, so it coalesces what live traffic at its limit lets it coalesce. A last phase publishes at a
// fixed rate (o.Rate events/s, default half the measured events/s) and times
// freshness: from an event's publication until the visitor's record, as
// watched in the bucket from outside, reflects it.
func Segments(ctx context.Context, o Options, progress io.Writer) (Result, error) {
	o.defaults()
	nats, cleanup, err := startNATS(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	return runSegments(ctx, nats.conn, o, SegmentsOptions{}, progress)
}

func runSegments(ctx context.Context, conn *bus.Conn, o Options, so SegmentsOptions, progress io.Writer) (Result, error) {
	if so.Visitors <= 0 {
		so.Visitors = 100_000
	}
	if so.Seed == 0 {
		so.Seed = uint64(time.Now().UnixNano())
	}
	run := strconv.FormatUint(so.Seed%1_000_000_007, 36)
	res := Result{Scenario: "segments", CeilingName: "bare KV CAS writes", Extra: map[string]any{}}
	g := newSegGen(so, run, o)
	startSeq, err := lastSeq(ctx, conn)
	if err != nil {
		return res, err
	}
	defer g.cleanup(conn)

	builder, err := segments.NewBuilder(conn, taxonomy.NewLive(nil), segments.WithConsumer("bench_"+run),
		segments.WithStartSequence(startSeq+1), segments.WithLogger(o.Log))
	if err != nil {
		return res, err
	}
	bctx, stopBuilder := context.WithCancel(context.WithoutCancel(ctx))
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := builder.Run(bctx); err != nil {
			errs <- err
		}
	}()
	defer func() {
		stopBuilder()
		wg.Wait()
	}()
	sr := &segmentsRun{conn: conn, g: g, builder: builder, errs: errs, progress: progress}

	per := o.Duration / time.Duration(o.Rounds)
	fmt.Fprintf(progress, "segments: %d rounds of %s each for the builder and for bare CAS writes, %d visitors\n", o.Rounds, per, so.Visitors)
	var writeRounds, ceilRounds, eventRounds, ratios []float64
	var events, writes, cpuEvents int64
	var natsMsgs uint64
	var cpuSecs float64
	for r := range o.Rounds {
		ceil, err := g.ceiling(ctx, conn, r, per)
		if err != nil {
			return res, err
		}
		b, err := sr.builderRound(ctx, per)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(progress, "  round %d/%d: builder %.0f writes/s (%.0f events/s), bare CAS %.0f writes/s (%.2f)\n",
			r+1, o.Rounds, b.writesPerS, b.eventsPerS, ceil, b.writesPerS/ceil)
		writeRounds, ceilRounds, eventRounds = append(writeRounds, b.writesPerS), append(ceilRounds, ceil), append(eventRounds, b.eventsPerS)
		ratios = append(ratios, b.writesPerS/ceil)
		events, writes = events+b.events, writes+b.writes
		cpuEvents, cpuSecs = cpuEvents+b.events, cpuSecs+b.cpuSeconds
		natsMsgs += b.natsMsgs
	}
	res.Ops, res.OpsPerS = writes, median(writeRounds)
	res.Ceiling, res.Ratio = median(ceilRounds), median(ratios)
	eventsPerS := median(eventRounds)
	res.Extra["rounds"] = ratios
	res.Extra["events"] = events
	res.Extra["events_per_s"] = round(eventsPerS, 0)
	res.Extra["events_per_write"] = round(float64(events)/float64(max(writes, 1)), 2)
	// Round trips: publishing, delivery, acknowledgements, record writes
	// and their answers, counted on the one connection they share.
	res.Extra["nats_msgs_per_event"] = round(float64(natsMsgs)/float64(max(events, 1)), 2)
	if cpuSecs > 0 {
		res.Extra["events_per_cpu_s"] = round(float64(cpuEvents)/cpuSecs, 0)
	}

	rate := o.Rate
	if rate <= 0 {
		rate = eventsPerS / 2
	}
	fresh, err := sr.freshness(ctx, rate, o.Duration/2)
	if err != nil {
		return res, err
	}
	res.P50, res.P99, res.P999 = fresh.Quantile(0.50), fresh.Quantile(0.99), fresh.Quantile(0.999)
	res.Extra["latency_is"] = "freshness: an event's publication until the visitor's record in adsyn_segments reflects it"
	res.Extra["fixed_rate_hz"] = round(rate, 0)
	res.Extra["fixed_rate_events"] = fresh.Ops
	res.Extra["fixed_rate_achieved_hz"] = round(fresh.OpsPerS, 0)
	stopBuilder()
	wg.Wait()

	st := builder.Stats()
	res.Extra["skipped_consent"] = st.SkippedConsent
	res.Extra["sensitive_dropped"] = st.Sensitive
	res.Extra["cas_conflicts"] = st.Conflicts
	res.Extra["dropped"] = g.dropped
	fmt.Fprintf(progress, "segments: checking records\n")
	v, err := g.verify(ctx, conn)
	if err != nil {
		return res, err
	}
	res.Lost = int64(v.lost)
	res.Extra["duplicated"] = v.duplicated
	res.Extra["visitors"] = v.visitors
	res.Extra["records"] = v.records
	res.Extra["sensitive_leaks"] = v.leaks
	fmt.Fprintf(progress, "segments: lost %d, duplicated %d, leaks %d\n", v.lost, v.duplicated, v.leaks)
	return res, nil
}

// segRound is what one builder round measured.
type segRound struct {
	events, writes         int64
	eventsPerS, writesPerS float64
	cpuSeconds             float64
	natsMsgs               uint64 // messages in and out of the connection, the publisher's included
}

// builderRound publishes events for d, as fast as the builder keeps up with
// (at most maxLag ahead), and waits until the builder has processed them all.
func (sr *segmentsRun) builderRound(ctx context.Context, d time.Duration) (segRound, error) {
	before := sr.builder.Stats()
	nats0 := sr.conn.NC.Stats()
	t0, cpu0 := time.Now(), cpuTime()
	since := func() uint64 { return processed(sr.builder.Stats()) - processed(before) }
	n, err := sr.g.publish(ctx, sr.conn, d, 0, false, since)
	if err != nil {
		return segRound{}, err
	}
	if err := sr.waitProcessed(ctx, processed(before)+uint64(n)); err != nil {
		return segRound{}, err
	}
	el := time.Since(t0).Seconds()
	after := sr.builder.Stats()
	w := int64(after.Writes - before.Writes)
	nats1 := sr.conn.NC.Stats()
	return segRound{events: int64(n), writes: w, eventsPerS: float64(n) / el, writesPerS: float64(w) / el,
		cpuSeconds: (cpuTime() - cpu0).Seconds(), natsMsgs: nats1.InMsgs + nats1.OutMsgs - nats0.InMsgs - nats0.OutMsgs}, nil
}

// freshness publishes at rate for d and times each event from its
// publication until a watched write of its visitor's record counts it.
func (sr *segmentsRun) freshness(ctx context.Context, rate float64, d time.Duration) (Phase, error) {
	fmt.Fprintf(sr.progress, "segments: freshness at a fixed %.0f events/s for %s\n", rate, d)
	w, err := sr.g.watch(ctx, sr.conn)
	if err != nil {
		return Phase{}, err
	}
	defer w.stop()
	before := sr.builder.Stats()
	t0 := time.Now()
	n, err := sr.g.publish(ctx, sr.conn, d, rate, true, nil)
	if err != nil {
		return Phase{}, err
	}
	el := time.Since(t0)
	if err := sr.waitProcessed(ctx, processed(before)+uint64(n)); err != nil {
		return Phase{}, err
	}
	// The last writes reach the watch a moment after the builder counts them.
	if err := w.waitTimed(ctx, sr.g.timedWant()); err != nil {
		return Phase{}, err
	}
	h := w.hist()
	return Phase{Ops: int64(n), Elapsed: el, OpsPerS: float64(n) / el.Seconds(), Hist: h, FixedHz: rate}, nil
}

func processed(s segments.BuilderStats) uint64 {
	return s.Applied + s.SkippedConsent + s.SkippedVisitor + s.SkippedNew + s.SkippedInvalid + s.Duplicates
}

func (sr *segmentsRun) waitProcessed(ctx context.Context, want uint64) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for processed(sr.builder.Stats()) < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("segments: %w", ctx.Err())
		case err := <-sr.errs:
			return err
		case <-tick.C:
			if time.Since(last) > 5*time.Second {
				fmt.Fprintf(sr.progress, "segments: still applying (%d of %d)...\n", processed(sr.builder.Stats()), want)
				last = time.Now()
			}
		}
	}
	return nil
}

// ceiling measures bare compare-and-set writes for d of records of the
// bench's size on the same bucket, with the builder's bound on writes in
// flight: ceilingKeys keys in turn, each write expecting the revision the
// key's last write got (0 the first time: a create).
func (g *segGen) ceiling(ctx context.Context, conn *bus.Conn, round int, d time.Duration) (float64, error) {
	js, err := jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(2*builderInflight))
	if err != nil {
		return 0, err
	}
	rec := segments.Record{Visitor: "x", Segments: []segments.Score{{ID: "home.plumbing", Score: 1, At: 1, Rule: "keyword:plumber*"}, {ID: "home", Score: 0.5, At: 1, Rule: "keyword:plumber*"}}, Langs: []string{"ru"}, LastSeen: 1, Events: 3, Applied: []uint64{1, 2}}
	val := rec.AppendMsgpack(nil)
	// Apart from the visitors' keys, so that reading those back is not slowed.
	prefix := "$KV." + bus.BucketSegments + "." + g.ceilingPrefix + strconv.Itoa(round) + "."
	sem := make(chan struct{}, builderInflight)
	type sent struct {
		f   jetstream.PubAckFuture
		key int
	}
	futs := make(chan sent, cap(sem))
	revs := make([]atomic.Uint64, ceilingKeys)
	var failed error
	var once sync.Once
	var acked int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range futs {
			select {
			case pa := <-s.f.Ok():
				revs[s.key].Store(pa.Sequence)
				acked++
			case err := <-s.f.Err():
				once.Do(func() { failed = err })
			}
			<-sem
		}
	}()
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ; i++ {
		if i%1024 == 0 && (ctx.Err() != nil || time.Now().After(deadline)) {
			break
		}
		sem <- struct{}{}
		k := i % ceilingKeys
		m := &nats.Msg{Subject: prefix + strconv.Itoa(k), Data: val, Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(revs[k].Load(), 10)}}}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			<-sem
			close(futs)
			<-done
			return 0, fmt.Errorf("segments: ceiling: %w", err)
		}
		futs <- sent{f, k}
	}
	close(futs)
	<-done
	if failed != nil {
		return 0, fmt.Errorf("segments: ceiling: %w", failed)
	}
	return float64(acked) / time.Since(start).Seconds(), ctx.Err()
}

// cleanup removes the run's consumers and records.
func (g *segGen) cleanup(conn *bus.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p := range event.DefaultPartitions {
		name := fmt.Sprintf("bench_%s_p%d", g.run, p)
		if err := conn.JS.DeleteConsumer(ctx, bus.StreamEvents, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			g.log.Warn("segments bench: cleanup", "consumer", name, "err", err)
		}
	}
	s, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	for _, p := range []string{g.prefix, g.ceilingPrefix} {
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bus.BucketSegments+"."+p+">"))
		}
	}
	if err != nil {
		g.log.Warn("segments bench: cleanup", "err", err)
	}
}
