package segments

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// Builder turns the events of ADSYN_EVENTS into visitor records. It owns a
// set of partitions; each has a durable pull consumer (subject filter
// adsyn.ev.*.<p>) and one worker, so a visitor's events are applied in
// order. A worker coalesces events per visitor over a short window, writes
// each changed record with compare-and-set on its revision, re-reads and
// re-applies on a conflict, and acknowledges messages only once every record
// they touch is written. The write is what kv.Update (kv.Create for revision
// 0) sends, a publish to the key's subject expecting its last sequence, but
// asynchronous, a bounded number in flight. It holds the records it wrote,
// so it reads one only after a conflict: a new visitor costs one write.
// Builders owning the same partition share its consumer and lose nothing:
// the revision check makes them serialize on each record.
type Builder struct {
	js       jetstream.JetStream // our own, for async publishes
	live     *taxonomy.Live
	o        options
	subjects string // "$KV.adsyn_segments."
	inflight int    // record writes in flight per worker
	writeID  string // prefix of the message ids of record writes, unique to the builder
	// writeIDs says whether record writes carry a message id: only when the
	// bucket is replicated, as one server never reads it (redelivery.go).
	writeIDs bool
	ttl      []string // the Nats-TTL header of record writes (WithRecordTTL), made once
	writes   atomic.Uint64
	ready    chan struct{}
	started  atomic.Bool
	m        builderMetrics
}

type builderMetrics struct {
	applied, skippedConsent, skippedVisitor, skippedInvalid, duplicates *metrics.Counter
	skippedNew                                                          *metrics.Counter
	sensitive                                                           map[taxonomy.Category]*metrics.Counter
	writes, conflicts, writeErrors, readErrors                          *metrics.Counter
	acked, nacked, terminated, consumeErrors                            *metrics.Counter
	flush                                                               *metrics.Histogram
}

// BuilderStats is a snapshot of a builder's counters.
type BuilderStats struct {
	Applied        uint64 // events applied to a written record
	SkippedConsent uint64 // events without consent to build a profile (P3)
	SkippedVisitor uint64 // events without a visitor id
	SkippedNew     uint64 // events whose visitor id was issued on that request (no record yet)
	SkippedInvalid uint64 // events whose visitor id cannot be a key
	Duplicates     uint64 // events already applied (redelivered) or older than an erasure
	Sensitive      uint64 // events whose signals were dropped as sensitive (P1)
	Writes         uint64 // records written
	Conflicts      uint64 // compare-and-set conflicts (each re-read and re-applied)
	WriteErrors    uint64
	Messages       uint64 // messages acknowledged
}

// NewBuilder returns a builder over conn matching events against live's
// taxonomy. Options: WithPartitions, WithWindow, WithMaxInflight,
// WithPolicy/WithHalfLife, WithConsumer, WithStartSequence, WithRecordTTL,
// WithLogger, WithMetrics.
func NewBuilder(conn *bus.Conn, live *taxonomy.Live, opts ...BuilderOption) (*Builder, error) {
	if conn == nil || conn.NC == nil || live == nil {
		return nil, errors.New("segments: builder needs a connection and a taxonomy")
	}
	o, err := buildOptions(opts, BuilderOption.builder)
	if err != nil {
		return nil, err
	}
	inflight := max(o.maxInflight/len(o.owned), 16)
	// No per-write ack timeout: a timer per message costs more than the
	// write; settle bounds the wait of a whole batch instead.
	js, err := jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(2*inflight*len(o.owned)))
	if err != nil {
		return nil, fmt.Errorf("segments: jetstream: %w", err)
	}
	b := &Builder{js: js, live: live, o: o, subjects: "$KV." + bus.BucketSegments + ".", inflight: inflight, ready: make(chan struct{}),
		writeID: strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(rand.Uint64(), 36) + "-"}
	if o.recordTTL > 0 {
		b.ttl = []string{o.recordTTL.String()}
	}
	reg := o.reg
	const ev, evHelp = "adsyn_segments_events_total", "Events the segment builder read, by outcome."
	b.m = builderMetrics{
		applied:        reg.Counter(ev, evHelp, "outcome", "applied"),
		skippedConsent: reg.Counter(ev, evHelp, "outcome", "no_consent"),
		skippedVisitor: reg.Counter(ev, evHelp, "outcome", "no_visitor"),
		skippedNew:     reg.Counter(ev, evHelp, "outcome", "new_visitor"),
		skippedInvalid: reg.Counter(ev, evHelp, "outcome", "invalid_visitor"),
		duplicates:     reg.Counter(ev, evHelp, "outcome", "duplicate"),
		sensitive:      map[taxonomy.Category]*metrics.Counter{},
		writes:         reg.Counter("adsyn_segments_writes_total", "Visitor records written."),
		conflicts:      reg.Counter("adsyn_segments_cas_conflicts_total", "Record writes refused on a revision conflict, then re-read and re-applied."),
		writeErrors:    reg.Counter("adsyn_segments_write_errors_total", "Record writes that failed; their messages are redelivered."),
		readErrors:     reg.Counter("adsyn_segments_read_errors_total", "Record reads after a conflict that failed."),
		acked:          reg.Counter("adsyn_segments_messages_total", "Event messages the builder finished, by outcome.", "outcome", "acked"),
		nacked:         reg.Counter("adsyn_segments_messages_total", "Event messages the builder finished, by outcome.", "outcome", "nacked"),
		terminated:     reg.Counter("adsyn_segments_messages_total", "Event messages the builder finished, by outcome.", "outcome", "undecodable"),
		consumeErrors:  reg.Counter("adsyn_segments_consume_errors_total", "Errors reported by the event consumers."),
		flush:          reg.Histogram("adsyn_segments_flush_seconds", "Time to write one coalesced batch of a partition.", metrics.LatencyBuckets),
	}
	for _, c := range taxonomy.SensitiveCategories() {
		b.m.sensitive[c] = reg.Counter("adsyn_segments_sensitive_dropped_total", "Events whose query, URL or page category was sensitive: they contribute nothing (P1).", "category", string(c))
	}
	return b, nil
}

// Stats returns the builder's counters.
func (b *Builder) Stats() BuilderStats {
	var sens uint64
	for _, c := range b.m.sensitive {
		sens += c.Load()
	}
	return BuilderStats{
		Applied:        b.m.applied.Load(),
		SkippedConsent: b.m.skippedConsent.Load(),
		SkippedVisitor: b.m.skippedVisitor.Load(),
		SkippedNew:     b.m.skippedNew.Load(),
		SkippedInvalid: b.m.skippedInvalid.Load(),
		Duplicates:     b.m.duplicates.Load(),
		Sensitive:      sens,
		Writes:         b.m.writes.Load(),
		Conflicts:      b.m.conflicts.Load(),
		WriteErrors:    b.m.writeErrors.Load(),
		Messages:       b.m.acked.Load(),
	}
}

// Ready is closed once Run consumes every owned partition.
func (b *Builder) Ready() <-chan struct{} { return b.ready }

// Run consumes the owned partitions until ctx ends, then finishes the
// batches in hand (writes and acknowledgements) and returns. It returns an
// error only when it cannot start.
func (b *Builder) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("segments: a builder runs once")
	}
	kvs, err := b.js.Stream(ctx, "KV_"+bus.BucketSegments)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("segments: bucket %s: %w", bus.BucketSegments, err)
	}
	b.writeIDs = kvs.CachedInfo().Config.Replicas > 1
	var (
		wg       sync.WaitGroup
		consumes []jetstream.ConsumeContext
		workers  []*worker
	)
	stopAll := func() {
		for _, cc := range consumes {
			cc.Stop()
		}
		for _, w := range workers {
			close(w.stopping)
		}
		wg.Wait()
	}
	for _, p := range b.o.owned {
		cfg := jetstream.ConsumerConfig{
			Durable:       fmt.Sprintf("%s_p%d", b.o.consumer, p),
			Description:   fmt.Sprintf("segment builder, partition %d of %d", p, b.o.partitions),
			FilterSubject: event.SubjectFilter(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       b.o.ackWait,
			MaxAckPending: max(1024, 4*b.o.pull),
			MaxDeliver:    -1,
		}
		if b.o.startSeq > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, b.o.startSeq
		}
		cons, err := b.js.CreateOrUpdateConsumer(ctx, bus.StreamEvents, cfg)
		if err != nil {
			stopAll()
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return fmt.Errorf("segments: consumer %s: %w", cfg.Durable, err)
		}
		w := newWorker(b, p, kvs)
		cc, err := cons.Consume(w.receive,
			jetstream.PullMaxMessages(b.o.pull),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				b.m.consumeErrors.Inc()
				b.o.log.Warn("segments: consumer error", "partition", p, "err", err)
			}))
		if err != nil {
			stopAll()
			return fmt.Errorf("segments: consume %s: %w", cfg.Durable, err)
		}
		consumes, workers = append(consumes, cc), append(workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	b.o.log.Info("segments: builder running", "partitions", b.o.owned, "of", b.o.partitions)
	close(b.ready)
	<-ctx.Done()
	stopAll()
	b.o.log.Info("segments: builder stopped")
	return nil
}
