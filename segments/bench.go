package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// BenchOptions shape RunBench.
type BenchOptions struct {
	Events     int           // events in the throughput phase (default 1,000,000)
	Visitors   int           // distinct visitors (default 100,000)
	Builders   int           // builders sharing the partitions (default 1)
	LatencyFor time.Duration // length of the fixed-rate latency phase (default 5s; negative: none)
	// LatencyRate is the latency phase's events per second (default: half
	// the measured throughput). The throughput phase drains a backlog, which
	// coalesces more than live traffic does, so half of it can exceed what
	// the builder sustains live: the percentiles then measure the queue.
	LatencyRate float64
	Ceiling     int           // bare KV writes for the ceiling (default 200,000; negative: none)
	Timeout     time.Duration // the whole run (default 10m)
	Seed        uint64
	Log         *slog.Logger
}

// BenchResult is what RunBench measured. The JSON names follow `adsyn bench`.
type BenchResult struct {
	Scenario string  `json:"scenario"`
	Ops      int     `json:"ops"`       // events published in the throughput phase
	OpsPerS  float64 `json:"ops_per_s"` // events the builder took from the stream to KV per second
	P50ms    float64 `json:"p50_ms"`    // publish to record written, at half the measured rate
	P99ms    float64 `json:"p99_ms"`
	P999ms   float64 `json:"p999_ms"`
	// CeilingOpsPerS is bare compare-and-set KV writes per second on the
	// same server, measured in the same run: what a builder that wrote once
	// per event and did nothing else would reach. Ratio is OpsPerS over it
	// (above 1 when coalescing saves more than decoding and matching cost).
	CeilingOpsPerS float64 `json:"ceiling_ops_per_s"`
	Ratio          float64 `json:"ratio"`
	Lost           int     `json:"lost"` // events published and consented but not in a record

	Duplicated     int     `json:"duplicated"`      // events counted twice
	Dropped        uint64  `json:"dropped"`         // events the publisher dropped
	Visitors       int     `json:"visitors"`        // distinct visitors in the events
	Records        int     `json:"records"`         // records found
	Applied        uint64  `json:"applied"`         // events applied
	SkippedConsent uint64  `json:"skipped_consent"` // events without profile consent
	Sensitive      uint64  `json:"sensitive_dropped"`
	Writes         uint64  `json:"writes"` // record writes in the throughput phase
	WritesPerS     float64 `json:"writes_per_s"`
	Conflicts      uint64  `json:"cas_conflicts"`
	PublishPerS    float64 `json:"publish_ops_per_s"` // edge-style publishing of the backlog
	Seconds        float64 `json:"seconds"`           // the throughput phase
	CPUSeconds     float64 `json:"cpu_seconds"`       // CPU time of this process (builder and embedded server) in it
	OpsPerCPUS     float64 `json:"ops_per_cpu_s"`     // events per CPU second: what a core of its own would do
	LatencyOps     int     `json:"latency_ops"`       // events in the latency phase
	LatencyRate    float64 `json:"latency_rate"`      // their rate per second
	Leaks          int     `json:"sensitive_leaks"`   // records holding a sensitive segment or a raw query: must be 0
}

func (o *BenchOptions) defaults() {
	if o.Events <= 0 {
		o.Events = 1_000_000
	}
	if o.Visitors <= 0 {
		o.Visitors = 100_000
	}
	if o.Builders <= 0 {
		o.Builders = 1
	}
	if o.LatencyFor == 0 {
		o.LatencyFor = 5 * time.Second
	}
	if o.Ceiling == 0 {
		o.Ceiling = 200_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// RunBench measures the builder from stream to KV: it publishes opts.Events
// events of opts.Visitors visitors into ADSYN_EVENTS as the edge does
// (batched messages per kind and partition), then runs the builder on that
// backlog until every event is applied and reports events per second. A
// second phase publishes at opts.LatencyRate (default half that rate), open
// loop, for the latency from an event's due time to its record's write; a
// third measures bare KV writes as the ceiling. Finally it reads every record
// back: lost counts consented events missing from them (events the publisher
// dropped included; Dropped says how many those were).
//
// Bench visitors are "bench.<run>.<n>"; their records and the bench's
// consumers are removed at the end, but the events stay in the stream until
// its retention ends: run it on a server without a live builder.
func RunBench(ctx context.Context, conn *bus.Conn, opts BenchOptions, progress io.Writer) (BenchResult, error) {
	opts.defaults()
	if progress == nil {
		progress = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	run := strconv.FormatUint(opts.Seed%1_000_000_007, 36)
	res := BenchResult{Scenario: "segments", Ops: opts.Events}
	g := newBenchGen(opts, run)

	stream, err := conn.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		return res, fmt.Errorf("segments: bench: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("segments: bench: %w", err)
	}
	startSeq := info.State.LastSeq + 1
	defer g.cleanup(conn)

	// 1. The backlog, published as the edge publishes.
	fmt.Fprintf(progress, "segments: publishing %d events of %d visitors\n", opts.Events, opts.Visitors)
	t0 := time.Now()
	dropped, err := g.publish(ctx, conn, opts.Events, 0)
	if err != nil {
		return res, err
	}
	res.Dropped += dropped
	res.PublishPerS = float64(opts.Events) / time.Since(t0).Seconds()
	fmt.Fprintf(progress, "segments: published at %.0f events/s\n", res.PublishPerS)

	// 2. The builders drain it.
	var lat latencies
	builders := make([]*Builder, opts.Builders)
	bctx, stopBuilders := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, opts.Builders)
	live := taxonomy.NewLive(nil)
	for i := range builders {
		b, err := NewBuilder(conn, live, WithConsumer("bench_"+run), WithStartSequence(startSeq), WithLogger(opts.Log))
		if err != nil {
			stopBuilders()
			return res, err
		}
		builders[i] = b
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Run(bctx); err != nil {
				errs <- err
			}
		}()
	}
	defer func() {
		stopBuilders()
		wg.Wait()
	}()
	processed := func() (n uint64) {
		for _, b := range builders {
			s := b.Stats()
			n += s.Applied + s.SkippedConsent + s.SkippedVisitor + s.SkippedInvalid + s.Duplicates
		}
		return n
	}
	t0, cpu0 := time.Now(), cpuTime()
	if err := waitFor(ctx, errs, progress, func() bool { return processed() >= uint64(opts.Events)-res.Dropped }); err != nil {
		return res, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.CPUSeconds = (cpuTime() - cpu0).Seconds()
	if res.CPUSeconds > 0 {
		res.OpsPerCPUS = float64(opts.Events) / res.CPUSeconds
	}
	res.OpsPerS = float64(opts.Events) / res.Seconds
	for _, b := range builders {
		s := b.Stats()
		res.Writes += s.Writes
		res.Conflicts += s.Conflicts
	}
	res.WritesPerS = float64(res.Writes) / res.Seconds
	fmt.Fprintf(progress, "segments: builder applied %d events in %.2fs: %.0f events/s, %d record writes; %.1f CPU s (%.0f events per CPU s)\n",
		opts.Events, res.Seconds, res.OpsPerS, res.Writes, res.CPUSeconds, res.OpsPerCPUS)

	// 3. Latency at a fixed rate, open loop.
	if opts.LatencyFor > 0 {
		rate := opts.LatencyRate
		if rate <= 0 {
			rate = res.OpsPerS / 2
		}
		n := int(rate * opts.LatencyFor.Seconds())
		res.LatencyOps, res.LatencyRate = n, rate
		fmt.Fprintf(progress, "segments: latency phase: %d events at %.0f/s\n", n, rate)
		lat.start()
		before := processed()
		dropped, err := g.publish(ctx, conn, n, rate)
		if err != nil {
			return res, err
		}
		res.Dropped += dropped
		if err := waitFor(ctx, errs, progress, func() bool { return processed() >= before+uint64(n)-dropped }); err != nil {
			return res, err
		}
		res.P50ms, res.P99ms, res.P999ms = lat.percentiles()
	}
	stopBuilders()
	wg.Wait()
	for _, b := range builders {
		s := b.Stats()
		res.Applied += s.Applied
		res.SkippedConsent += s.SkippedConsent
		res.Sensitive += s.Sensitive
	}

	// 4. Read every record back.
	fmt.Fprintf(progress, "segments: checking records\n")
	if err := g.verify(ctx, conn, &res); err != nil {
		return res, err
	}

	// 5. The ceiling: bare compare-and-set writes of records of the same size.
	if opts.Ceiling > 0 {
		c, err := g.ceiling(ctx, conn, opts.Ceiling)
		if err != nil {
			return res, err
		}
		res.CeilingOpsPerS = c
		if c > 0 {
			res.Ratio = res.OpsPerS / c
		}
		fmt.Fprintf(progress, "segments: ceiling %.0f bare KV writes/s; builder %.0f events/s in %.0f writes/s (ratio %.2f)\n", c, res.OpsPerS, res.WritesPerS, res.Ratio)
	}
	fmt.Fprintf(progress, "segments: lost %d, duplicated %d, leaks %d\n", res.Lost, res.Duplicated, res.Leaks)
	return res, nil
}

func waitFor(ctx context.Context, errs chan error, progress io.Writer, done func() bool) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for !done() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("segments: bench: %w", ctx.Err())
		case err := <-errs:
			return err
		case <-tick.C:
			if time.Since(last) > 5*time.Second {
				fmt.Fprintf(progress, "segments: still applying...\n")
				last = time.Now()
			}
		}
	}
	return nil
}

// latencies records publish-to-write times of the latency phase.
type latencies struct {
	mu     sync.Mutex
	on     bool
	millis []float64
}

func (l *latencies) start() {
	l.mu.Lock()
	l.on = true
	l.mu.Unlock()
}

func (l *latencies) observe(changes []change) {
	now := time.Now().UnixMilli()
	l.mu.Lock()
	if l.on {
		for i := range changes {
			l.millis = append(l.millis, float64(now-changes[i].ts))
		}
	}
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99, p999 float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.millis) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l.millis)
	at := func(q float64) float64 { return l.millis[min(len(l.millis)-1, int(q*float64(len(l.millis))))] }
	return at(0.5), at(0.99), at(0.999)
}

// benchGen makes the events: searches and page views that fire segments,
// impressions, some without consent and some sensitive.
type benchGen struct {
	opts     BenchOptions
	run      string
	rng      *rand.Rand
	visitors []string
	want     []uint32 // consented events per visitor
	queries  []string
	paths    []string
	marker   string // in every query: no record may hold it

	// The page load being generated.
	visitor, left, page int
	first               bool
	consent             consent.Set
	lang                string
}

func newBenchGen(opts BenchOptions, run string) *benchGen {
	g := &benchGen{opts: opts, run: run, rng: rand.New(rand.NewPCG(opts.Seed, 0x5e6)), marker: "zq" + run + "q"}
	g.visitors = make([]string, opts.Visitors)
	for i := range g.visitors {
		g.visitors[i] = "bench." + run + "." + strconv.Itoa(i)
	}
	g.want = make([]uint32, opts.Visitors)
	for _, s := range taxonomy.Default().File().Segments {
		for _, k := range s.Rules.Keywords {
			g.queries = append(g.queries, strings.ReplaceAll(k, "*", ""))
		}
		for _, u := range s.Rules.URLs {
			g.paths = append(g.paths, strings.TrimPrefix(u, "*"))
		}
	}
	return g
}

var benchSensitive = []string{"психолог", "therapy for anxiety", "church near me", "divorce lawyer", "payday loan"}

// publish publishes n events; with rate > 0, at that rate, each stamped with
// the time it was due (so a slow publish counts against latency).
func (g *benchGen) publish(ctx context.Context, conn *bus.Conn, n int, rate float64) (dropped uint64, err error) {
	p, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{Log: g.opts.Log})
	if err != nil {
		return 0, fmt.Errorf("segments: bench publisher: %w", err)
	}
	start := time.Now()
	var e event.Event
	var id [16]byte
	for i := range n {
		due := time.Now()
		if rate > 0 {
			due = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if i%4096 == 0 && ctx.Err() != nil {
			break
		}
		binary.LittleEndian.PutUint64(id[:8], g.rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], g.rng.Uint64())
		g.next(&e, id, due.UnixMilli())
		p.Publish(&e)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := p.Stop(stopCtx); err != nil {
		return p.Stats().Dropped, fmt.Errorf("segments: bench publish: %w", err)
	}
	return p.Stats().Dropped, ctx.Err()
}

// next makes the next event. Events come in page loads, as the edge sees
// them: a page view or a search, then zero to three ad impressions on that
// page, from one visitor at one moment with one consent. Visitors are drawn
// uniformly, so a visitor's page loads are far apart.
func (g *benchGen) next(e *event.Event, id [16]byte, ts int64) {
	cats := e.Categories[:0]
	if g.left == 0 {
		g.visitor = g.rng.IntN(len(g.visitors))
		g.left = 1 + g.rng.IntN(4)
		g.consent = consent.All.Without(consent.LinkIdentity)
		g.lang = [...]string{"ru-RU", "ru", "en-US", "de"}[g.rng.IntN(4)]
		g.page = g.rng.IntN(100)
		g.first = true
	}
	g.left--
	*e = event.Event{ID: id, TS: ts, Visitor: g.visitors[g.visitor], Consent: g.consent, Lang: g.lang, Categories: cats}
	switch x := g.page; {
	case !g.first:
		e.Kind, e.Campaign, e.URL = event.KindImpression, "camp"+strconv.Itoa(g.rng.IntN(50)), "https://market.example/page"
	case x < 5:
		g.consent = consent.All.Without(consent.BuildProfile)
		e.Consent = g.consent
		e.Kind, e.URL = event.KindPageview, "https://market.example"+g.paths[g.rng.IntN(len(g.paths))]
	case x < 7:
		e.Kind, e.Query = event.KindSearch, benchSensitive[g.rng.IntN(len(benchSensitive))]+" "+g.marker
	case x < 52:
		e.Kind, e.URL = event.KindPageview, "https://market.example"+g.paths[g.rng.IntN(len(g.paths))]
		if g.rng.IntN(4) == 0 {
			e.Categories = append(e.Categories, "home-repair")
		}
	case x < 67:
		e.Kind, e.URL = event.KindPageview, "https://news.example/2024/05/some-article-"+strconv.Itoa(g.rng.IntN(1000))
	default:
		e.Kind, e.Query = event.KindSearch, g.queries[g.rng.IntN(len(g.queries))]+" "+g.marker
		e.URL = "https://market.example/search"
	}
	g.first = false
	if e.Consent.Allow(consent.BuildProfile) {
		g.want[g.visitor]++
	}
}

// verify reads the bench's records and counts what is missing, doubled or
// not allowed.
func (g *benchGen) verify(ctx context.Context, conn *bus.Conn, res *BenchResult) error {
	s, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		return fmt.Errorf("segments: bench verify: %w", err)
	}
	prefix := "$KV." + bus.BucketSegments + ".bench." + g.run + "."
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return fmt.Errorf("segments: bench verify: %w", err)
	}
	got := make([]uint64, len(g.visitors))
	tax := taxonomy.Default()
	marker := []byte(g.marker)
	if n := len(info.State.Subjects); n > 0 || info.State.Msgs > 0 {
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{prefix + ">"},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		})
		if err != nil {
			return fmt.Errorf("segments: bench verify: %w", err)
		}
		for {
			batch, err := c.Fetch(4096, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return fmt.Errorf("segments: bench verify: %w", err)
			}
			k := 0
			for m := range batch.Messages() {
				k++
				md, _ := m.Metadata()
				i, err := strconv.Atoi(strings.TrimPrefix(m.Subject(), prefix))
				if err != nil || i < 0 || i >= len(got) || len(m.Data()) == 0 {
					continue
				}
				var r Record
				if err := DecodeRecord(m.Data(), &r); err != nil {
					return fmt.Errorf("segments: bench verify: %w", err)
				}
				res.Records++
				got[i] = r.Events
				if bytes.Contains(m.Data(), marker) || !RecordAllowed(&r, tax) {
					res.Leaks++
				}
				if md != nil && md.NumPending == 0 {
					k = -1
					break
				}
			}
			if k <= 0 {
				break
			}
		}
	}
	for i, w := range g.want {
		if w > 0 {
			res.Visitors++
		}
		switch d := int(w) - int(got[i]); {
		case d > 0:
			res.Lost += d
		case d < 0:
			res.Duplicated -= d
		}
	}
	return nil
}

// ceiling measures bare compare-and-set creates of n records of the bench's
// size on the same bucket, with the builder's bound on writes in flight.
func (g *benchGen) ceiling(ctx context.Context, conn *bus.Conn, n int) (float64, error) {
	js, err := jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return 0, err
	}
	rec := Record{Visitor: "x", Segments: []Score{{ID: "home.plumbing", Score: 1, At: 1, Rule: "keyword:plumber*"}, {ID: "home", Score: 0.5, At: 1, Rule: "keyword:plumber*"}}, Langs: []string{"ru"}, LastSeen: 1, Events: 3, Applied: []uint64{1, 2}}
	val := rec.AppendMsgpack(nil)
	prefix := "$KV." + bus.BucketSegments + ".bench." + g.run + ".ceiling."
	sem := make(chan struct{}, defaultOptions().maxInflight)
	futs := make(chan jetstream.PubAckFuture, cap(sem))
	var failed error
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				once.Do(func() { failed = err })
			}
			<-sem
		}
	}()
	start := time.Now()
	for i := range n {
		if i%4096 == 0 && ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		m := &nats.Msg{Subject: prefix + strconv.Itoa(i), Data: val, Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			<-sem
			close(futs)
			<-done
			return 0, fmt.Errorf("segments: bench ceiling: %w", err)
		}
		futs <- f
	}
	close(futs)
	<-done
	if failed != nil {
		return 0, fmt.Errorf("segments: bench ceiling: %w", failed)
	}
	return float64(n) / time.Since(start).Seconds(), ctx.Err()
}

// cleanup removes the bench's consumers and records.
func (g *benchGen) cleanup(conn *bus.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p := range event.DefaultPartitions {
		name := fmt.Sprintf("bench_%s_p%d", g.run, p)
		if err := conn.JS.DeleteConsumer(ctx, bus.StreamEvents, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			g.opts.Log.Warn("segments: bench cleanup", "consumer", name, "err", err)
		}
	}
	s, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bus.BucketSegments+".bench."+g.run+".>"))
	}
	if err != nil {
		g.opts.Log.Warn("segments: bench cleanup", "err", err)
	}
}
