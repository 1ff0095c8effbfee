package adserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/adsyn/adsyn/adserver/decision"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Spend is what a campaign has delivered: impressions, and their CPM prices
// summed in micros (Cost/1000 is money in micros of the account currency).
type Spend = decision.Spend

// edgeSpend is one edge's spend, stored at pace.<edge> in adsyn_campaigns.
// Each edge writes only its own key, so there is no write contention; every
// edge sums all keys. A stopped edge's key keeps counting toward totals.
type edgeSpend struct {
	Edge  string           `msgpack:"e"`
	At    int64            `msgpack:"a"` // unix ms of the write
	Day   int64            `msgpack:"d"` // UTC day number of Today
	Today map[string]Spend `msgpack:"t"`
	Total map[string]Spend `msgpack:"T"`
	// Claims are impressions this edge may still serve before its next
	// computation; the others keep them free while the edge is live.
	Claims map[string]int64 `msgpack:"o,omitempty"`
}

const dayMS = decision.DayMS

// Pacer shares this edge's spend through NATS and turns budgets and what
// every edge has spent into each campaign's limit on this edge. Daily budgets
// are spread evenly over the day's open time. Every pace interval an edge
// claims part of what is left, after what the other live edges spent and
// claimed: about twice what it served in the last interval (so busy edges
// get more and idle ones hold nothing back), and at most its share of what
// is left among the live edges (so edges claiming at the same instant cannot
// together take more than is left). Overshoot is a few impressions.
type Pacer struct {
	cat  *Catalog
	cfg  *config
	kv   jetstream.KeyValue
	edge string
	w    jetstream.KeyWatcher

	mu    sync.Mutex
	paces map[string]*Pace

	// Owned by run.
	day       int64
	base      map[string]*ownBase
	others    map[string]*edgeSpend
	claims    map[string]int64 // what each campaign's limit allows beyond served
	seen      map[string]int64 // served at the last computation
	lastServe int64
	lastWrite time.Time
	serving   atomic.Bool // an Edge serves from this catalog: heartbeat

	writes, writeErrs *metrics.Counter
}

// ownBase is this edge's spend before the live counters: what its key held
// at start (a restarted edge with a stable id), and the live counters' values
// when the day began.
type ownBase struct {
	total, today, mark Spend
}

func newPacer(ctx context.Context, cat *Catalog, cfg *config) (*Pacer, error) {
	id := cfg.edgeID
	if id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id = "edge-" + hex.EncodeToString(b[:])
	}
	p := &Pacer{
		cat: cat, cfg: cfg, kv: cat.kv, edge: id,
		paces: map[string]*Pace{}, base: map[string]*ownBase{}, others: map[string]*edgeSpend{},
		claims: map[string]int64{}, seen: map[string]int64{},
		day:       cfg.now().UnixMilli() / dayMS,
		writes:    cfg.metrics.Counter("adsyn_ad_pace_writes_total", "Writes of this edge's spend to adsyn_campaigns."),
		writeErrs: cfg.metrics.Counter("adsyn_ad_pace_write_errors_total", "Failed writes of this edge's spend."),
	}
	w, err := p.kv.Watch(ctx, prefixPace+".*")
	if err != nil {
		return nil, fmt.Errorf("adserver: watch spend: %w", err)
	}
	// Load every edge's spend, ours included, before the first limit.
	timeout := time.After(30 * time.Second)
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("adserver: spend watch ended")
			}
			if e == nil {
				loaded = true
				continue
			}
			p.apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		case <-timeout:
			_ = w.Stop()
			return nil, errors.New("adserver: spend state did not load within 30s")
		}
	}
	p.w = w
	return p, nil
}

// Edge returns this edge's id in the pacing state.
func (p *Pacer) Edge() string { return p.edge }

// paceFor returns the campaign's pace, shared by every index version. A new
// campaign with a budget starts closed until the next limit computation.
func (p *Pacer) paceFor(c *Campaign) *Pace {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.paces[c.ID]
	if !ok {
		pc = NewPace()
		if c.Budget.Total > 0 || c.Budget.Daily > 0 {
			pc.limit.Store(0)
		}
		p.paces[c.ID] = pc
	}
	return pc
}

func (p *Pacer) apply(e jetstream.KeyValueEntry) {
	edge := e.Key()[len(prefixPace)+1:]
	if e.Operation() != jetstream.KeyValuePut {
		delete(p.others, edge)
		return
	}
	var s edgeSpend
	if err := msgpack.Unmarshal(e.Value(), &s); err != nil {
		p.cfg.log.Warn("adserver: bad spend record", "key", e.Key(), "err", err)
		return
	}
	if edge != p.edge {
		p.others[edge] = &s
		return
	}
	if p.lastWrite.IsZero() { // our own key from an earlier run
		for id, t := range s.Total {
			b := p.own(id)
			b.total = t
			if s.Day == p.day {
				b.today = s.Today[id]
			}
		}
	}
}

func (p *Pacer) own(id string) *ownBase {
	b, ok := p.base[id]
	if !ok {
		b = &ownBase{}
		p.base[id] = b
	}
	return b
}

func (p *Pacer) run(ctx context.Context) {
	defer p.cat.wg.Done()
	defer func() { _ = p.w.Stop() }()
	// Jittered ticks keep edges from computing in lockstep.
	jitter := func() time.Duration { return p.cfg.paceEvery * time.Duration(90+mrand.IntN(21)) / 100 }
	t := time.NewTimer(jitter())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Share the final counts; the bucket outlives us.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.flush(fctx, true)
			cancel()
			return
		case e, ok := <-p.w.Updates():
			if !ok {
				p.cfg.log.Error("adserver: spend watch ended")
				return
			}
			if e != nil {
				p.apply(e)
			}
		case <-t.C:
			p.limits()
			p.flush(ctx, false)
			t.Reset(jitter())
		case <-p.cat.kick:
			p.limits()
		}
	}
}

// live returns the edge's own spend of every campaign it ever served.
func (p *Pacer) live() map[string]Spend {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Spend, len(p.paces))
	for id, pc := range p.paces {
		if n := pc.served.Load(); n > 0 {
			out[id] = Spend{Imps: n, Cost: pc.cost.Load()}
		}
	}
	return out
}

// rollover starts a new day's counts when the UTC day changes.
func (p *Pacer) rollover(now int64, live map[string]Spend) {
	day := now / dayMS
	if day == p.day {
		return
	}
	p.day = day
	for _, b := range p.base {
		b.today = Spend{}
	}
	for id, s := range live {
		p.own(id).mark = s
	}
	for id, b := range p.base {
		if _, ok := live[id]; !ok {
			b.mark = Spend{}
		}
	}
}

// ownSpend returns this edge's today and total for one campaign.
func (p *Pacer) ownSpend(id string, live map[string]Spend) (today, total Spend) {
	l := live[id]
	b := p.base[id]
	if b == nil {
		return l, l
	}
	return b.today.Add(l.Sub(b.mark)), b.total.Add(l)
}

func (p *Pacer) flush(ctx context.Context, final bool) {
	now := p.cfg.now()
	live := p.live()
	p.rollover(now.UnixMilli(), live)
	var served int64
	for _, s := range live {
		served += s.Imps
	}
	// Write when something changed, and as a heartbeat of a serving edge so
	// the others keep its claims free. A process that never serves (the API)
	// writes nothing.
	heartbeat := p.serving.Load() && now.Sub(p.lastWrite) >= 2*p.cfg.paceEvery
	if served == p.lastServe && !final && !heartbeat && len(p.claims) == 0 {
		return
	}
	if served == 0 && !p.serving.Load() && len(p.base) == 0 {
		return
	}
	rec := edgeSpend{Edge: p.edge, At: now.UnixMilli(), Day: p.day, Today: map[string]Spend{}, Total: map[string]Spend{}}
	if !final && len(p.claims) > 0 {
		rec.Claims = p.claims
	}
	ids := map[string]bool{}
	for id := range live {
		ids[id] = true
	}
	for id := range p.base {
		ids[id] = true
	}
	for id := range ids {
		today, total := p.ownSpend(id, live)
		if total.Imps > 0 {
			rec.Total[id] = total
		}
		if today.Imps > 0 {
			rec.Today[id] = today
		}
	}
	b, err := msgpack.Marshal(&rec)
	if err == nil {
		ctx, cancel := withDefaultTimeout(ctx)
		_, err = p.kv.Put(ctx, prefixPace+"."+p.edge, b)
		cancel()
	}
	if err != nil {
		p.writeErrs.Inc()
		if ctx.Err() == nil {
			p.cfg.log.Warn("adserver: share spend", "err", err)
		}
		return
	}
	p.writes.Inc()
	p.lastServe, p.lastWrite = served, now
}

// limits sets every budgeted campaign's limit on this edge.
func (p *Pacer) limits() {
	ix := p.cat.Index()
	if ix == nil {
		return
	}
	now := p.cfg.now()
	nowMS := now.UnixMilli()
	live := p.live()
	p.rollover(nowMS, live)
	fresh := nowMS - 3*p.cfg.paceEvery.Milliseconds()
	edges := int64(1)
	for _, o := range p.others {
		if o.At >= fresh {
			edges++
		}
	}
	clear(p.claims)
	for i := range ix.camps {
		e := &ix.camps[i]
		if e.pace == nil {
			continue
		}
		b := e.c.Budget
		if b.Total == 0 && b.Daily == 0 {
			e.pace.limit.Store(math.MaxInt64)
			continue
		}
		id := e.c.ID
		today, total := p.ownSpend(id, live)
		var claimed int64
		for _, o := range p.others {
			if o.Day == p.day {
				today = today.Add(o.Today[id])
			}
			total = total.Add(o.Total[id])
			if o.At >= fresh {
				claimed += o.Claims[id]
			}
		}
		room := headroom(b, e.ecpm, today, total, e.dayFraction(now)) - claimed
		served := e.pace.served.Load()
		need := 2*(served-p.seen[id]) + 2
		p.seen[id] = served
		// Another edge may be claiming at this very moment from the same
		// room: take at most a fair share of it.
		claim := decision.Claim(room, edges, need)
		e.pace.limit.Store(served + claim)
		if claim > 0 {
			p.claims[id] = claim
		}
	}
}

// headroom is decision.Headroom of the campaign's budget.
func headroom(b Budget, ecpm int64, today, total Spend, frac float64) int64 {
	return decision.Headroom(decision.Budget{Money: b.Unit == Money, Total: b.Total, Daily: b.Daily}, ecpm, today, total, frac)
}

// dayFraction is the share of today's open delivery time (UTC day, within
// the flight and day parts) that has passed at now.
func (e *entry) dayFraction(now time.Time) float64 { return e.sched.DayFraction(now.UnixMilli()) }
