package stats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adsyn/adsyn/internal/stats/tally"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
)

// group is the priority group of every partition consumer.
const group = "stats"

// fetchWait paces a pull loop's pauses and the expiry of its pull
// requests (twice fetchWait).
const fetchWait = time.Second

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
	spare  []*tally.Delta
	room   chan struct{} // closed when the buffer empties
	kick   chan struct{}
	idle   chan struct{} // every owned partition is caught up
	flushN uint64

	cacheMu sync.Mutex
	cache   map[tally.RecKey]*cached

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

	live    *tally.Live        // the last minutes' pageviews and visitors per site
	liveSub *nats.Subscription // answers LiveSubject
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
	n        int
	name     string
	cons     jetstream.Consumer
	pin      atomic.Pointer[string] // pin id of the last delivery to us
	caughtUp atomic.Bool            // the last message admitted had nothing pending after it

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
	m       jetstream.Msg
	seq     uint64
	ts      int64  // stream timestamp, unix ms
	pending uint64 // messages pending behind it when delivered
}

// batch is what one flush writes and then acknowledges.
type batch struct {
	t      *tally.Tally
	msgs   [][]heldMsg // by partition, in order
	dups   [][]heldMsg // by partition: redeliveries of admitted messages, ack only
	maxSeq []uint64    // by partition
	events int
	n      uint64 // flush number
}

// newBatch returns an empty batch; a.mu is held.
func (a *Aggregator) newBatch() *batch {
	t := tally.New(a.cfg.partitions, a.cfg.cpm)
	t.Spare = &a.spare
	return &batch{
		t:      t,
		msgs:   make([][]heldMsg, a.cfg.partitions),
		dups:   make([][]heldMsg, a.cfg.partitions),
		maxSeq: make([]uint64, a.cfg.partitions),
	}
}

// New returns an aggregator reading ADSYN_EVENTS through js. Start runs it.
func New(js jetstream.JetStream, opts ...AggregatorOption) (*Aggregator, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrBadOption)
	}
	cfg, err := newConfig(opts, AggregatorOption.aggregator)
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	a := &Aggregator{
		js: js, cfg: cfg, id: hex.EncodeToString(id[:]),
		cache: map[tally.RecKey]*cached{}, owned: map[int]bool{},
		room: make(chan struct{}), kick: make(chan struct{}, 1), idle: make(chan struct{}, 1),
		final: make(chan context.Context), flushed: make(chan error, 1),
		ackFn: jetstream.Msg.Ack,
		live:  tally.NewLive(maxLiveSites),
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
	reg.CounterFunc("adsyn_stats_realtime_dropped_total", "Pageviews left out of the realtime view: more sites live at once than it holds.",
		func() float64 { return float64(a.live.Dropped()) })
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
	if a.liveSub, err = a.js.Conn().Subscribe(LiveSubject, a.answerLive); err != nil {
		return fmt.Errorf("stats: answer %s: %w", LiveSubject, err)
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
	_ = a.liveSub.Unsubscribe()
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
