package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// segGen makes the segments scenario's events: searches and page views that
// fire segments, impressions, some without consent and some sensitive.
type segGen struct {
	log    *slog.Logger
	run    string
	prefix string // of every visitor of the run: "bench.<run>."
	// ceilingPrefix is that of the ceiling's keys: "benchceiling.<run>.".
	ceilingPrefix string
	rng           *rand.Rand
	visitors      []string
	queries       []string
	paths         []string
	marker        string // in every query: no record may hold it
	dropped       uint64 // events the publisher dropped

	mu sync.Mutex
	// due holds, per visitor, the publication time (unix ns) of each of its
	// consented events in order, 0 for events not timed: a record counting
	// k events reflects the first k.
	due [][]int64

	// The page load being generated.
	visitor, left, page int
	first               bool
	consent             consent.Set
	lang                string
}

func newSegGen(so SegmentsOptions, run string, o Options) *segGen {
	g := &segGen{log: o.Log, run: run, prefix: "bench." + run + ".", ceilingPrefix: "benchceiling." + run + ".", rng: rand.New(rand.NewPCG(so.Seed, 0x5e6)), marker: "zq" + run + "q"}
	g.visitors = make([]string, so.Visitors)
	for i := range g.visitors {
		g.visitors[i] = g.prefix + strconv.Itoa(i)
	}
	g.due = make([][]int64, so.Visitors)
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

var segSensitive = []string{"психолог", "therapy for anxiety", "church near me", "divorce lawyer", "payday loan"}

// maxLag bounds the events published and not yet processed in a saturating
// round: the builder always has work, as under live traffic at its limit,
// but does not drain a backlog, which would coalesce more than live traffic.
const maxLag = 8192

// publish publishes events for d as the edge does: as fast as the builder
// keeps up, at most maxLag ahead of processed() (rate 0), or at rate per
// second, open loop, each due at its slot. With timed, each consented
// event's due time is kept for freshness.
func (g *segGen) publish(ctx context.Context, conn *bus.Conn, d time.Duration, rate float64, timed bool, processed func() uint64) (n int, err error) {
	p, err := bus.NewPublisher(conn.NC, bus.PublisherOptions{Log: g.log})
	if err != nil {
		return 0, fmt.Errorf("segments: publisher: %w", err)
	}
	start := time.Now()
	deadline := start.Add(d)
	var e event.Event
	var id [16]byte
	for i := 0; ; i++ {
		due := time.Now()
		if rate > 0 {
			due = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if !due.Before(deadline) {
				break
			}
			if w := time.Until(due); w > 0 {
				time.Sleep(w)
			}
		} else if i%1024 == 0 {
			if !time.Now().Before(deadline) {
				break
			}
		}
		if rate <= 0 && i%256 == 0 {
			for uint64(n) > processed()+maxLag && ctx.Err() == nil && time.Now().Before(deadline) {
				time.Sleep(500 * time.Microsecond)
			}
		}
		if i%1024 == 0 && ctx.Err() != nil {
			break
		}
		binary.LittleEndian.PutUint64(id[:8], g.rng.Uint64())
		binary.LittleEndian.PutUint64(id[8:], g.rng.Uint64())
		g.next(&e, id, due, timed)
		p.Publish(&e)
		n++
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err = p.Stop(stopCtx)
	dropped := p.Stats().Dropped
	g.dropped += dropped
	if err != nil {
		return n - int(dropped), fmt.Errorf("segments: publish: %w", err)
	}
	return n - int(dropped), ctx.Err()
}

// next makes the next event. Events come in page loads, as the edge sees
// them: a page view or a search, then zero to three ad impressions on that
// page, from one visitor at one moment with one consent. Visitors are drawn
// uniformly, so a visitor's page loads are far apart.
func (g *segGen) next(e *event.Event, id [16]byte, due time.Time, timed bool) {
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
	*e = event.Event{ID: id, TS: due.UnixMilli(), Visitor: g.visitors[g.visitor], Consent: g.consent, Lang: g.lang, Categories: cats}
	switch x := g.page; {
	case !g.first:
		e.Kind, e.Campaign, e.URL = event.KindImpression, "camp"+strconv.Itoa(g.rng.IntN(50)), "https://market.example/page"
	case x < 5:
		g.consent = consent.All.Without(consent.BuildProfile)
		e.Consent = g.consent
		e.Kind, e.URL = event.KindPageview, "https://market.example"+g.paths[g.rng.IntN(len(g.paths))]
	case x < 7:
		e.Kind, e.Query = event.KindSearch, segSensitive[g.rng.IntN(len(segSensitive))]+" "+g.marker
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
		var at int64
		if timed {
			at = due.UnixNano()
		}
		g.mu.Lock()
		g.due[g.visitor] = append(g.due[g.visitor], at)
		g.mu.Unlock()
	}
}

// timedWant is how many timed consented events were published.
func (g *segGen) timedWant() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, d := range g.due {
		for _, at := range d {
			if at != 0 {
				n++
			}
		}
	}
	return n
}

// visitorOf returns the visitor index of a record's key, or -1.
func (g *segGen) visitorOf(key string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(key, g.prefix))
	if err != nil || !strings.HasPrefix(key, g.prefix) || i < 0 || i >= len(g.visitors) {
		return -1
	}
	return i
}

// freshWatch follows the run's record writes in adsyn_segments, as any
// reader of the bucket sees them, and times each timed event once a record
// counts it.
type freshWatch struct {
	g       *segGen
	cc      jetstream.ConsumeContext
	mu      sync.Mutex
	seen    []uint64                // per visitor, the highest event count seen
	h       *hdrhistogram.Histogram // microseconds
	counted int
}

func (g *segGen) watch(ctx context.Context, conn *bus.Conn) (*freshWatch, error) {
	s, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		return nil, fmt.Errorf("segments: watch: %w", err)
	}
	w := &freshWatch{g: g, seen: make([]uint64, len(g.visitors)), h: newHist()}
	// Counts already written are the baseline.
	g.mu.Lock()
	for i, d := range g.due {
		w.seen[i] = uint64(len(d))
	}
	g.mu.Unlock()
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$KV." + bus.BucketSegments + "." + g.prefix + ">"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("segments: watch: %w", err)
	}
	w.cc, err = c.Consume(w.observe, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		g.log.Warn("segments bench: watch", "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("segments: watch: %w", err)
	}
	return w, nil
}

func (w *freshWatch) observe(m jetstream.Msg) {
	now := time.Now().UnixNano()
	v := w.g.visitorOf(strings.TrimPrefix(m.Subject(), "$KV."+bus.BucketSegments+"."))
	if v < 0 || len(m.Data()) == 0 {
		return
	}
	var r segments.Record
	if segments.DecodeRecord(m.Data(), &r) != nil {
		return
	}
	w.g.mu.Lock()
	due := w.g.due[v]
	w.g.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := w.seen[v]; k < r.Events && k < uint64(len(due)); k++ {
		if due[k] != 0 {
			_ = w.h.RecordValue(max(1, (now-due[k])/1000))
			w.counted++
		}
	}
	w.seen[v] = max(w.seen[v], r.Events)
}

// waitTimed waits until want timed events were seen, for at most 10s.
func (w *freshWatch) waitTimed(ctx context.Context, want int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		n := w.counted
		w.mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (w *freshWatch) hist() *hdrhistogram.Histogram {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.h
}

func (w *freshWatch) stop() { w.cc.Stop() }

// segVerify is what reading the run's records back found.
type segVerify struct {
	lost, duplicated, visitors, records, leaks int
}

// verify reads the run's records and counts what is missing, doubled or
// not allowed.
func (g *segGen) verify(ctx context.Context, conn *bus.Conn) (segVerify, error) {
	var res segVerify
	s, err := conn.JS.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		return res, fmt.Errorf("segments: verify: %w", err)
	}
	prefix := "$KV." + bus.BucketSegments + "." + g.prefix
	got := make([]uint64, len(g.visitors))
	tax := taxonomy.Default()
	marker := []byte(g.marker)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return res, fmt.Errorf("segments: verify: %w", err)
	}
	for {
		batch, err := c.Fetch(4096, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return res, fmt.Errorf("segments: verify: %w", err)
		}
		k := 0
		for m := range batch.Messages() {
			k++
			md, _ := m.Metadata()
			i := g.visitorOf(strings.TrimPrefix(m.Subject(), "$KV."+bus.BucketSegments+"."))
			if i >= 0 && len(m.Data()) > 0 {
				var r segments.Record
				if err := segments.DecodeRecord(m.Data(), &r); err != nil {
					return res, fmt.Errorf("segments: verify: %w", err)
				}
				res.records++
				got[i] = r.Events
				if bytes.Contains(m.Data(), marker) || !segments.RecordAllowed(&r, tax) {
					res.leaks++
				}
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
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, d := range g.due {
		w := len(d)
		if w > 0 {
			res.visitors++
		}
		switch diff := w - int(got[i]); {
		case diff > 0:
			res.lost += diff
		case diff < 0:
			res.duplicated -= diff
		}
	}
	return res, nil
}
