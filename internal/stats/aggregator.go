package stats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
)

// group is the priority group of every partition consumer.
const group = "stats"

// pinHeader carries the id of the client a pinned consumer delivers to.
const pinHeader = "Nats-Pin-Id"

// fetchWait paces a pull loop's pauses and the expiry of its pull
// requests (twice fetchWait).
const fetchWait = time.Second

// pullHeartbeat is the idle heartbeat asked with every pull request, the
// least the client allows. Missing heartbeats are how the subscription learns
// that its request is gone (sent while the consumer had no leader, answered
// "no responders" after a cluster restart, or lost in a reconnect): it then
// pulls again. Without that it waits forever for a request nobody holds.
const pullHeartbeat = 500 * time.Millisecond

// nextWait is how long a pull loop waits for a message before it looks
// around (ownership, settling); a stopping aggregator waits for it. The
// iterator watches heartbeats only within one Next call, for twice
// pullHeartbeat, so a wait no longer than that would never see them missing.
const nextWait = 3 * pullHeartbeat

// pullBytes bounds what one partition's subscription has in flight.
const pullBytes = 4 << 20

// Aggregator keeps hourly counters per campaign and per site from the events
// in ADSYN_EVENTS. Each partition has one durable consumer whose pinned
// client is the only aggregator it delivers to; aggregators split the
// partitions by a fair share and take over a partition when its client stops.
//
// Exactly once: a record carries the last stream sequence applied per
// partition and takes, under compare-and-set, only the contributions of
// later messages. A partition is admitted in stream order; after a change of
// pinned client, or a lost delivery, nothing is admitted until no other
// client holds unacknowledged messages of that partition (puller.settle), so
// no later message can be applied before an earlier one. A message is
// acknowledged after its records and its partition's checkpoint are written.
type Aggregator struct {
	js  jetstream.JetStream
	cfg config
	id  string // this instance, in the membership keys

	kv     jetstream.KeyValue
	stream jetstream.Stream
	parts  []*partition

	mu     sync.Mutex // guards cur, room, spare and the partitions' admission state
	cur    *batch
	spare  []*delta
	room   chan struct{} // closed when the buffer empties
	kick   chan struct{}
	flushN uint64

	cacheMu sync.Mutex
	cache   map[recKey]*cached

	ownMu   sync.Mutex
	owned   map[int]bool
	members atomic.Int64

	starting, started, stopping atomic.Bool
	cancel                      context.CancelFunc
	pullers                     sync.WaitGroup
	side                        sync.WaitGroup // membership
	final                       chan context.Context
	flushed                     chan error

	buffered atomic.Int64
	applied  atomic.Uint64
	m        aggMetrics

	ackFn func(jetstream.Msg) error // tests replace it to withhold acknowledgements
}

type aggMetrics struct {
	admitted, duplicates, bad, events                  *metrics.Counter
	flushes, flushErrors, writes, conflicts, recompute *metrics.Counter
	fetchErrors, waits, takeovers, releases, gaps      *metrics.Counter
	heartbeatMisses                                    *metrics.Counter
	flushTime                                          *metrics.Histogram
}

// partition is one consumer and its admission state.
type partition struct {
	n    int
	name string
	cons jetstream.Consumer
	pin  atomic.Pointer[string] // pin id of the last delivery to us

	// Under Aggregator.mu.
	maxAdded uint64           // last sequence admitted
	held     map[uint64]int32 // delivered to us and not acknowledged: handles kept, by sequence

	// Flusher only.
	ckpt, ckptRev uint64
	ckptLoaded    bool
}

// drop forgets one handle of message seq; a.mu is held.
func (p *partition) drop(seq uint64) {
	if p.held[seq]--; p.held[seq] <= 0 {
		delete(p.held, seq)
	}
}

type heldMsg struct {
	m   jetstream.Msg
	seq uint64
	ts  int64 // stream timestamp, unix ms
}

// batch is what one flush writes and then acknowledges.
type batch struct {
	t      *tally
	msgs   [][]heldMsg // by partition, in order
	dups   [][]heldMsg // by partition: redeliveries of admitted messages, ack only
	maxSeq []uint64    // by partition
	events int
	n      uint64 // flush number
}

// newBatch returns an empty batch; a.mu is held.
func (a *Aggregator) newBatch() *batch {
	t := newTally(a.cfg.partitions, a.cfg.cpm)
	t.spare = &a.spare
	return &batch{
		t:      t,
		msgs:   make([][]heldMsg, a.cfg.partitions),
		dups:   make([][]heldMsg, a.cfg.partitions),
		maxSeq: make([]uint64, a.cfg.partitions),
	}
}

// New returns an aggregator reading ADSYN_EVENTS through js. Start runs it.
func New(js jetstream.JetStream, opts ...Option) (*Aggregator, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrBadOption)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	a := &Aggregator{
		js: js, cfg: cfg, id: hex.EncodeToString(id[:]),
		cache: map[recKey]*cached{}, owned: map[int]bool{},
		room: make(chan struct{}), kick: make(chan struct{}, 1),
		final: make(chan context.Context), flushed: make(chan error, 1),
		ackFn: jetstream.Msg.Ack,
	}
	a.cur = a.newBatch()
	a.members.Store(1)
	reg := cfg.reg
	const msgs, msgsHelp = "adsyn_stats_messages_total", "Event messages seen by the stats aggregator: admitted, duplicate (already admitted or applied), bad (undecodable)."
	a.m = aggMetrics{
		admitted:        reg.Counter(msgs, msgsHelp, "result", "admitted"),
		duplicates:      reg.Counter(msgs, msgsHelp, "result", "duplicate"),
		bad:             reg.Counter(msgs, msgsHelp, "result", "bad"),
		events:          reg.Counter("adsyn_stats_events_total", "Events applied to the hourly counters and acknowledged."),
		flushes:         reg.Counter("adsyn_stats_flushes_total", "Counter flushes completed."),
		flushErrors:     reg.Counter("adsyn_stats_flush_errors_total", "Failed flush attempts (retried)."),
		writes:          reg.Counter("adsyn_stats_record_writes_total", "Hourly records written."),
		conflicts:       reg.Counter("adsyn_stats_record_conflicts_total", "Record writes that lost a compare-and-set and were redone."),
		recompute:       reg.Counter("adsyn_stats_record_recomputes_total", "Records whose contribution was recomputed because part of it was already applied."),
		fetchErrors:     reg.Counter("adsyn_stats_fetch_errors_total", "Failed pulls from the partition consumers."),
		waits:           reg.Counter("adsyn_stats_takeover_waits_total", "Pulls held back after a change of pinned client, until the previous client's messages are settled."),
		takeovers:       reg.Counter("adsyn_stats_takeovers_total", "Partitions this aggregator became the pinned client of."),
		releases:        reg.Counter("adsyn_stats_releases_total", "Partitions released to another aggregator to even out the load."),
		heartbeatMisses: reg.Counter("adsyn_stats_pull_heartbeat_misses_total", "Pull requests whose heartbeats stopped (lost or refused, as when a consumer has no leader), pulled again."),
		gaps:            reg.Counter("adsyn_stats_delivery_gaps_total", "Deliveries found missing (by consumer sequence); admission waits for their redelivery."),
		flushTime:       reg.Histogram("adsyn_stats_flush_seconds", "Time to write one flush of counters.", metrics.LatencyBuckets),
	}
	reg.Gauge("adsyn_stats_buffered_events", "Events admitted and not yet flushed.", func() float64 { return float64(a.buffered.Load()) })
	reg.Gauge("adsyn_stats_partitions_owned", "Partitions this aggregator is the pinned client of.", func() float64 {
		a.ownMu.Lock()
		defer a.ownMu.Unlock()
		return float64(len(a.owned))
	})
	reg.Gauge("adsyn_stats_aggregators", "Live aggregators sharing the partitions, as seen by this one.", func() float64 { return float64(a.members.Load()) })
	return a, nil
}

// ConsumerName returns the durable consumer of partition p.
func (a *Aggregator) ConsumerName(p int) string { return a.cfg.consumer + "_" + strconv.Itoa(p) }

// Applied returns the number of events applied and acknowledged so far.
func (a *Aggregator) Applied() uint64 { return a.applied.Load() }

// Start creates or binds the partition consumers and starts consuming; ctx
// bounds the setup only. The work runs until Stop.
func (a *Aggregator) Start(ctx context.Context) error {
	if !a.starting.CompareAndSwap(false, true) {
		return ErrStarted
	}
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	if a.kv, err = a.js.KeyValue(ctx, bus.BucketStats); err != nil {
		return fmt.Errorf("stats: open %s: %w", bus.BucketStats, err)
	}
	if a.stream, err = a.js.Stream(ctx, bus.StreamEvents); err != nil {
		return fmt.Errorf("stats: open %s: %w", bus.StreamEvents, err)
	}
	for p := range a.cfg.partitions {
		cons, err := a.consumer(ctx, p)
		if err != nil {
			return err
		}
		a.parts = append(a.parts, &partition{n: p, name: a.ConsumerName(p), cons: cons, held: map[uint64]int32{}})
	}
	run, stop := context.WithCancel(context.Background())
	a.cancel = stop
	a.side.Add(1)
	go a.membership(run)
	go a.flushLoop(run)
	for _, p := range a.parts {
		a.pullers.Add(1)
		go a.pullLoop(run, p)
	}
	a.started.Store(true)
	a.cfg.log.Info("stats aggregator started", "instance", a.id, "partitions", a.cfg.partitions, "consumer", a.cfg.consumer)
	return nil
}

// consumer binds partition p's consumer, updating its settings, or makes
// it: from the partition's checkpoint when there is one (what precedes is
// applied), else from the first message.
func (a *Aggregator) consumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:     a.ConsumerName(p),
		Description: "stats aggregator, partition " + strconv.Itoa(p),
		// One wildcard filter: the server finds the next message far faster
		// than with a list of the counted kinds; the others are skipped here
		// by subject, undecoded.
		FilterSubject:  event.SubjectFilter(p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        a.cfg.ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  20000,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{group},
		PinnedTTL:      a.cfg.pinnedTTL,
	}
	c, err := a.stream.Consumer(ctx, cfg.Durable)
	switch {
	case err == nil:
		old := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
		u, err := a.stream.UpdateConsumer(ctx, cfg)
		if err != nil {
			a.cfg.log.Warn("stats consumer kept as it is", "consumer", cfg.Durable, "err", err)
			return c, nil
		}
		return u, nil
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("stats: consumer %s: %w", cfg.Durable, err)
	}
	start := a.cfg.startSeq
	if start == 0 {
		ck, _, err := a.checkpoint(ctx, p)
		if err != nil {
			return nil, err
		}
		if ck > 0 {
			start = ck + 1
		}
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	c, err = a.stream.CreateConsumer(ctx, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = a.stream.Consumer(ctx, cfg.Durable) // another aggregator was first
	}
	if err != nil {
		return nil, fmt.Errorf("stats: consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// Stop stops pulling, writes and acknowledges what was admitted, and hands
// this aggregator's partitions to the others at once. Unwritten events stay
// unacknowledged, to be redelivered.
func (a *Aggregator) Stop(ctx context.Context) error {
	if !a.started.Load() || a.stopping.Swap(true) {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx, 30*time.Second)
	defer cancel()
	// Pull loops stop within nextWait, admitting what their
	// subscriptions still buffered.
	done := make(chan struct{})
	go func() { a.pullers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.cancel()
		<-done
	}
	var err error
	select {
	case a.final <- ctx:
		err = <-a.flushed
	case <-ctx.Done():
		a.cancel()
		err = <-a.flushed
	}
	a.cancel()
	a.side.Wait()
	for _, p := range a.parts {
		if a.isOwned(p.n) {
			a.unpin(ctx, p)
		}
	}
	if ferr := a.js.Conn().FlushWithContext(ctx); ferr != nil && err == nil {
		err = fmt.Errorf("stats: flush acknowledgements: %w", ferr)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = a.kv.Delete(dctx, a.memberKey())
	dcancel()
	a.cfg.log.Info("stats aggregator stopped", "instance", a.id, "applied", a.applied.Load())
	return err
}

// puller is one partition's pull loop state.
type puller struct {
	a   *Aggregator
	p   *partition
	it  jetstream.MessagesContext
	pin string // of the deliveries being admitted
	// Every delivery of the consumer has the next consumer sequence; while
	// pinned, all of them are ours, so a jump means one was lost.
	lastDelivery uint64
	settled      bool
	hold         map[uint64]heldMsg // this pin's messages, before settling
	extra        []heldMsg          // redeliveries among them
	snap         *snapshot
	facts        []fact
	ownCheck     time.Time
	evaluated    time.Time // last settle check
}

// snapshot is the consumer's state read for a settle check.
type snapshot struct {
	pending   int    // delivered and not acknowledged
	delivered uint64 // last stream sequence delivered
	ckpt      uint64
	at        time.Time
}

// pullLoop consumes partition p while this aggregator may own it, through
// one persistent pull subscription, so no message the server sends is lost
// between pull requests.
func (a *Aggregator) pullLoop(ctx context.Context, p *partition) {
	defer a.pullers.Done()
	u := &puller{a: a, p: p, hold: map[uint64]heldMsg{}}
	defer u.stop()
	fails := 0
	gone := false // the consumer was deleted and is not yet made again
	for ctx.Err() == nil && !a.stopping.Load() {
		if gone {
			if gone = !a.recreate(ctx, p); gone {
				fails++
				sleep(ctx, backoff(fails))
				continue
			}
		}
		if a.excess(p.n) {
			u.stop()
			a.unpin(ctx, p)
			a.setOwned(p.n, false)
			a.m.releases.Inc()
			a.cfg.log.Info("stats partition released", "partition", p.n, "instance", a.id)
			sleep(ctx, 3*fetchWait) // let another aggregator take it
			continue
		}
		if !a.mayPull(p.n) {
			u.stop()
			sleep(ctx, fetchWait)
			continue
		}
		a.waitRoom(ctx)
		if u.it == nil {
			// Bytes in flight are bounded too: every partition shares the
			// connection with the records' writes and the API's reads.
			it, err := p.cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(a.cfg.fetchBatch, pullBytes),
				jetstream.PullExpiry(2*fetchWait), jetstream.PullHeartbeat(pullHeartbeat), jetstream.PullPriorityGroup(group))
			if err != nil {
				fails++
				a.m.fetchErrors.Inc()
				a.cfg.log.Warn("stats pull failed", "partition", p.n, "err", err)
				gone = consumerGone(err)
				sleep(ctx, backoff(fails))
				continue
			}
			u.it = it
		}
		m, err := u.it.Next(jetstream.NextMaxWait(nextWait))
		switch {
		case err == nil:
			fails = 0
			u.take(m)
		case errors.Is(err, nats.ErrTimeout):
			// Idle: are we still the pinned client, does the consumer exist?
			if u.checkOwned(ctx) {
				u.stop()
				gone = true
				continue
			}
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			// The iterator has forgotten its request and pulls again.
			a.m.heartbeatMisses.Inc()
			a.cfg.log.Debug("stats pull missed heartbeats, pulling again", "partition", p.n)
		default:
			fails++
			a.m.fetchErrors.Inc()
			a.cfg.log.Warn("stats pull ended", "partition", p.n, "err", err)
			u.stop()
			gone = consumerGone(err)
			sleep(ctx, backoff(fails))
			continue
		}
		if !u.settled && len(u.hold) > 0 && (err != nil || time.Since(u.evaluated) >= 50*time.Millisecond) {
			u.evaluated = time.Now()
			if err := u.settle(ctx); err != nil {
				a.cfg.log.Warn("stats settle check failed", "partition", p.n, "err", err)
			}
		}
	}
}

func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)
}

// recreate makes p's consumer again when an operator deleted it, from the
// partition's checkpoint. It reports whether p has a consumer now.
func (a *Aggregator) recreate(ctx context.Context, p *partition) bool {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := a.consumer(cctx, p.n)
	if err != nil {
		a.cfg.log.Warn("stats consumer not made again yet", "consumer", p.name, "err", err)
		return false
	}
	p.cons = c
	a.cfg.log.Warn("stats consumer made again", "consumer", p.name)
	return true
}

// take admits or holds one delivered message.
func (u *puller) take(m jetstream.Msg) {
	a, p := u.a, u.p
	md, err := m.Metadata()
	if err != nil {
		a.m.bad.Inc()
		a.cfg.log.Error("stats message without metadata", "partition", p.n, "err", err)
		return
	}
	if id := m.Headers().Get(pinHeader); id != u.pin {
		u.pin, u.settled, u.snap = id, false, nil
		p.pin.Store(&id)
		a.setOwned(p.n, true)
		a.m.takeovers.Inc()
	} else if u.settled && md.Sequence.Consumer != u.lastDelivery+1 {
		// A delivery to us went missing: the message may come back after
		// the ack wait, so admit nothing out of order until it does.
		u.settled, u.snap = false, nil
		a.m.gaps.Inc()
		a.cfg.log.Warn("stats delivery gap", "partition", p.n, "expected", u.lastDelivery+1, "got", md.Sequence.Consumer)
	}
	u.lastDelivery = md.Sequence.Consumer
	h := heldMsg{m: m, seq: md.Sequence.Stream, ts: md.Timestamp.UnixMilli()}
	a.mu.Lock()
	p.held[h.seq]++
	a.mu.Unlock()
	if u.settled {
		u.facts = a.admit(p, h, u.facts)
		return
	}
	if _, dup := u.hold[h.seq]; dup {
		u.extra = append(u.extra, h)
	} else {
		u.hold[h.seq] = h
	}
}

// settle admits the held messages, in order, once every message of p that
// is delivered and not acknowledged is ours, so admitting ours cannot skip
// one held elsewhere.
//
// The check compares the consumer's ack-pending count with our messages
// between the checkpoint and the last sequence delivered, both read with
// it. Ours there were pending when the count was read: one acknowledged
// before is at or below the checkpoint (written before any ack), and one
// delivered after has a later sequence or is a redelivery of a pending one.
// So equal counts mean nothing else was pending. Messages at or below the
// checkpoint are applied already: ours are acknowledged here, others wait to
// be redelivered to us. The snapshot is read again every second while the
// counts differ.
func (u *puller) settle(ctx context.Context) error {
	a, p := u.a, u.p
	if u.snap == nil || time.Since(u.snap.at) > time.Second {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ck, _, err := a.checkpoint(ctx, p.n)
		if err != nil {
			return err
		}
		a.mu.Lock()
		kept := u.extra[:0]
		for _, h := range u.extra {
			if h.seq <= ck {
				_ = h.m.Ack()
				p.drop(h.seq)
			} else {
				kept = append(kept, h)
			}
		}
		u.extra = kept
		for s, h := range u.hold {
			if s <= ck {
				_ = h.m.Ack()
				p.drop(s)
				delete(u.hold, s)
			}
		}
		a.mu.Unlock()
		info, err := p.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("stats: consumer info %s: %w", p.name, err)
		}
		if ck, _, err = a.checkpoint(ctx, p.n); err != nil {
			return err
		}
		u.snap = &snapshot{pending: info.NumAckPending, delivered: info.Delivered.Stream, ckpt: ck, at: time.Now()}
	}
	a.mu.Lock()
	n := 0
	for s := range p.held {
		if s > u.snap.ckpt && s <= u.snap.delivered {
			n++
		}
	}
	a.mu.Unlock()
	if n != u.snap.pending {
		a.m.waits.Inc()
		return nil
	}
	seqs := make([]uint64, 0, len(u.hold))
	for s := range u.hold {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		u.facts = a.admit(p, u.hold[s], u.facts)
	}
	a.mu.Lock()
	a.cur.dups[p.n] = append(a.cur.dups[p.n], u.extra...)
	a.mu.Unlock()
	clear(u.hold)
	u.extra, u.snap, u.settled = nil, nil, true
	return nil
}

// checkOwned asks the server, now and then, whether we are still p's
// pinned client. It reports whether the consumer is gone: a pull on a
// deleted consumer only times out, so the idle loop is where that shows.
func (u *puller) checkOwned(ctx context.Context) (gone bool) {
	if time.Since(u.ownCheck) < heartbeat {
		return false
	}
	u.ownCheck = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := u.p.cons.Info(ctx)
	if err != nil {
		return consumerGone(err)
	}
	if u.pin == "" {
		return false
	}
	for _, g := range info.PriorityGroups {
		if g.Group == group && g.PinnedClientID != u.pin {
			u.pin, u.settled, u.snap = "", false, nil
			u.a.setOwned(u.p.n, false)
		}
	}
	return false
}

// stop ends the subscription: what it still buffered is read, and every
// message not admitted is nakked, to go at once to the next pinned client.
func (u *puller) stop() {
	a, p := u.a, u.p
	if u.it != nil {
		u.it.Drain()
		for {
			m, err := u.it.Next(jetstream.NextMaxWait(fetchWait))
			if err != nil {
				break
			}
			u.take(m)
		}
		u.it = nil
	}
	a.mu.Lock()
	for _, h := range u.hold {
		_ = h.m.Nak()
		p.drop(h.seq)
	}
	for _, h := range u.extra {
		_ = h.m.Nak()
		p.drop(h.seq)
	}
	a.mu.Unlock()
	clear(u.hold)
	u.extra, u.snap = nil, nil
	u.pin, u.settled = "", false
}

// admit counts h into the current batch, in order; a message at or below
// the last admitted one is already in a batch or applied.
func (a *Aggregator) admit(p *partition, h heldMsg, facts []fact) []fact {
	facts, err := decodeFacts(h, facts[:0])
	a.mu.Lock()
	b := a.cur
	if h.seq <= p.maxAdded {
		b.dups[p.n] = append(b.dups[p.n], h)
		a.mu.Unlock()
		a.m.duplicates.Inc()
		return facts
	}
	if err != nil {
		// A corrupt message counts what decoded before the fault, the same
		// way each time it is read.
		a.m.bad.Inc()
		a.cfg.log.Error("stats undecodable event message", "partition", p.n, "seq", h.seq, "err", err)
	}
	p.maxAdded = h.seq
	b.msgs[p.n] = append(b.msgs[p.n], h)
	b.maxSeq[p.n] = h.seq
	for i := range facts {
		b.t.add(&facts[i], p.n, h.seq, nil)
	}
	b.events += len(facts)
	full := b.events >= a.cfg.flushEvents
	a.mu.Unlock()
	a.buffered.Add(int64(len(facts)))
	a.m.admitted.Inc()
	if full {
		a.kickFlush()
	}
	return facts
}

// decodeFacts appends the counted facts of h's events to facts.
func decodeFacts(h heldMsg, facts []fact) ([]fact, error) {
	if !counted(subjectKind(h.m.Subject())) {
		return facts, nil
	}
	_, err := event.DecodeBatch(h.m.Data(), func(e *event.Event) error {
		if f, ok := factOf(e, h.ts); ok {
			facts = append(facts, f)
		}
		return nil
	})
	return facts, err
}

// subjectKind returns the kind token of adsyn.ev.<kind>.<partition>.
func subjectKind(subject string) event.Kind {
	s := strings.TrimPrefix(subject, event.SubjectPrefix)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return event.ParseKind([]byte(s))
}

func (a *Aggregator) kickFlush() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// waitRoom blocks while twice a flush's worth of events waits.
func (a *Aggregator) waitRoom(ctx context.Context) {
	for a.buffered.Load() >= 2*int64(a.cfg.flushEvents) && ctx.Err() == nil && !a.stopping.Load() {
		a.kickFlush()
		a.mu.Lock()
		room := a.room
		a.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
		case <-time.After(fetchWait):
		}
	}
}

// Ownership: an aggregator pulls a partition it does not own only while it
// owns fewer than its fair share, and releases the excess.

func (a *Aggregator) share() int {
	m := int(max(1, a.members.Load()))
	return (a.cfg.partitions + m - 1) / m
}

func (a *Aggregator) setOwned(p int, own bool) {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	if own {
		a.owned[p] = true
	} else {
		delete(a.owned, p)
	}
}

func (a *Aggregator) isOwned(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return a.owned[p]
}

func (a *Aggregator) mayPull(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return a.owned[p] || len(a.owned) < a.share()
}

// excess reports whether p is among the partitions owned beyond the share.
func (a *Aggregator) excess(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	s := a.share()
	if !a.owned[p] || len(a.owned) <= s {
		return false
	}
	n := 0
	for q := range a.owned {
		if q < p {
			n++
		}
	}
	return n >= s
}

// unpin lets the server pin another client to p, if we are the pinned one.
func (a *Aggregator) unpin(ctx context.Context, p *partition) {
	mine := p.pin.Load()
	if mine == nil || *mine == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == group && g.PinnedClientID == *mine {
			if err := a.stream.UnpinConsumer(ctx, p.name, group); err != nil {
				a.cfg.log.Warn("stats unpin failed", "partition", p.n, "err", err)
			}
		}
	}
}

// Membership: each aggregator puts agg.<consumer>.m.<instance> every
// heartbeat; members are those whose last put is recent by the server's
// clock, compared with the newest put seen.

const heartbeat = 2 * time.Second

func (a *Aggregator) memberKey() string {
	return "agg." + a.cfg.consumer + ".m." + a.id
}

func (a *Aggregator) membership(ctx context.Context) {
	defer a.side.Done()
	var (
		mu   sync.Mutex
		seen = map[string]time.Time{}
	)
	go func() {
		for ctx.Err() == nil {
			w, err := a.kv.Watch(ctx, "agg."+a.cfg.consumer+".m.*")
			if err != nil {
				a.cfg.log.Warn("stats membership watch failed", "err", err)
				sleep(ctx, heartbeat)
				continue
			}
			for e := range w.Updates() {
				if e == nil {
					continue
				}
				mu.Lock()
				if e.Operation() == jetstream.KeyValuePut {
					seen[e.Key()] = e.Created()
				} else {
					delete(seen, e.Key())
				}
				mu.Unlock()
			}
			_ = w.Stop()
		}
	}()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, heartbeat)
		if _, err := a.kv.Put(pctx, a.memberKey(), strconv.AppendInt(nil, time.Now().UnixMilli(), 10)); err != nil && ctx.Err() == nil {
			a.cfg.log.Warn("stats heartbeat failed", "err", err)
		}
		cancel()
		mu.Lock()
		var newest time.Time
		for _, t := range seen {
			if t.After(newest) {
				newest = t
			}
		}
		n := int64(0)
		for k, t := range seen {
			switch age := newest.Sub(t); {
			case age <= 5*heartbeat:
				n++
			case age > time.Hour:
				delete(seen, k)
				go a.kv.Delete(context.WithoutCancel(ctx), k) //nolint:errcheck // stale member of a crashed process; retried next time
			}
		}
		mu.Unlock()
		a.members.Store(max(1, n))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func backoff(fails int) time.Duration {
	d := 100 * time.Millisecond << min(fails, 6)
	return min(d, 5*time.Second)
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
