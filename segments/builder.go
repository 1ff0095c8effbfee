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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
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
	live     *Live
	o        options
	subjects string // "$KV.adsyn_segments."
	inflight int    // record writes in flight per worker
	writeID  string // prefix of the message ids of record writes, unique to the builder
	writes   atomic.Uint64
	ready    chan struct{}
	started  atomic.Bool
	m        builderMetrics

	// onWrite, when set (by the benchmark), sees the changes of each record
	// written, from the worker goroutines.
	onWrite func(changes []change)
}

type builderMetrics struct {
	applied, skippedConsent, skippedVisitor, skippedInvalid, duplicates *metrics.Counter
	skippedNew                                                          *metrics.Counter
	sensitive                                                           map[Category]*metrics.Counter
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
func NewBuilder(conn *bus.Conn, live *Live, opts ...Option) (*Builder, error) {
	if conn == nil || conn.NC == nil || live == nil {
		return nil, errors.New("segments: builder needs a connection and a taxonomy")
	}
	o, err := buildOptions(opts)
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
	reg := o.reg
	const ev, evHelp = "adsyn_segments_events_total", "Events the segment builder read, by outcome."
	b.m = builderMetrics{
		applied:        reg.Counter(ev, evHelp, "outcome", "applied"),
		skippedConsent: reg.Counter(ev, evHelp, "outcome", "no_consent"),
		skippedVisitor: reg.Counter(ev, evHelp, "outcome", "no_visitor"),
		skippedNew:     reg.Counter(ev, evHelp, "outcome", "new_visitor"),
		skippedInvalid: reg.Counter(ev, evHelp, "outcome", "invalid_visitor"),
		duplicates:     reg.Counter(ev, evHelp, "outcome", "duplicate"),
		sensitive:      map[Category]*metrics.Counter{},
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
	for _, c := range SensitiveCategories() {
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
			AckWait:       30 * time.Second,
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

// worker applies one partition's events.
type worker struct {
	b        *Builder
	part     int
	kvs      jetstream.Stream
	in       chan jetstream.Msg
	stopping chan struct{}
	records  map[string]*held // what this worker last wrote or read, by visitor

	// The batch being coalesced.
	msgs      []batchMsg
	index     map[string]int32 // visitor → visits
	visits    []visit
	contribs  []Contribution
	staged    []staged
	events    int
	arena     []byte
	expired   bool // the acknowledgements of a write round are over time
	abandoned bool // some writes of the batch were given up unacknowledged

	// Counts of the batch, added to the metrics once per flush.
	writes, applied, dups uint64
}

type held struct {
	rec Record
	rev uint64
}

type batchMsg struct {
	m      jetstream.Msg
	failed bool
}

type visit struct {
	visitor string
	changes []change
	msgs    []int32 // indexes in the batch's msgs
}

type staged struct {
	visitor string
	c       change
}

func newWorker(b *Builder, part int, kvs jetstream.Stream) *worker {
	return &worker{
		b: b, part: part, kvs: kvs,
		in:       make(chan jetstream.Msg, 2*b.o.pull),
		stopping: make(chan struct{}),
		records:  map[string]*held{},
		index:    map[string]int32{},
	}
}

// receive is the consumer's callback.
func (w *worker) receive(m jetstream.Msg) {
	select {
	case w.in <- m:
	case <-w.stopping:
		_ = m.Nak() // redelivered to whoever runs next
	}
}

func (w *worker) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case m := <-w.in:
			if len(w.msgs) == 0 {
				timer.Reset(w.b.o.window)
			}
			w.add(m)
			if w.events >= w.b.o.flushEvents {
				timer.Stop()
				w.flush()
			}
		case <-timer.C:
			// Take what is already waiting first: behind a backlog the
			// batch grows to flushEvents, and coalesces more.
		more:
			for w.events < w.b.o.flushEvents {
				select {
				case m := <-w.in:
					w.add(m)
				default:
					break more
				}
			}
			w.flush()
		case <-w.stopping:
			timer.Stop()
		drain:
			for {
				select {
				case m := <-w.in:
					w.add(m)
				default:
					break drain
				}
			}
			w.flush()
			return
		}
	}
}

// add decodes a message into the batch; an undecodable one is terminated.
func (w *worker) add(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		w.b.o.log.Warn("segments: message without metadata", "partition", w.part, "err", err)
		_ = m.Term()
		w.b.m.terminated.Inc()
		return
	}
	seq := md.Sequence.Stream
	tax := w.b.live.Load()
	now := time.Now().UnixMilli()
	mark := len(w.contribs)
	w.staged = w.staged[:0]
	var noConsent, noVisitor, newVisitor, invalid uint64
	sensitive := map[Category]uint64(nil)
	_, err = event.DecodeBatch(m.Data(), func(e *event.Event) error {
		switch {
		case e.Visitor == "":
			noVisitor++
			return nil
		case e.NewVisitor:
			// Data minimisation: a record only once the cookie came back.
			newVisitor++
			return nil
		case !e.Consent.Allow(consent.BuildProfile):
			noConsent++
			return nil
		case !ValidVisitor(e.Visitor):
			invalid++
			return nil
		}
		ts := e.TS
		if ts <= 0 || ts > now+5*60*1000 {
			ts = now
		}
		start := len(w.contribs)
		var cat string
		w.contribs, cat = tax.Match(w.contribs, e)
		c := change{seq: seq, ts: ts, lang: primaryLang(e.Lang), contribs: w.contribs[start:len(w.contribs):len(w.contribs)], sensitive: cat != ""}
		if cat != "" {
			if sensitive == nil {
				sensitive = map[Category]uint64{}
			}
			sensitive[Category(cat)]++
		}
		if e.Kind == event.KindImpression && e.Campaign != "" && len(e.Campaign) <= 128 {
			c.campaign = e.Campaign
		}
		w.staged = append(w.staged, staged{visitor: e.Visitor, c: c})
		return nil
	})
	if err != nil {
		w.contribs = w.contribs[:mark]
		w.b.o.log.Warn("segments: undecodable event message", "partition", w.part, "seq", seq, "err", err)
		_ = m.Term()
		w.b.m.terminated.Inc()
		return
	}
	w.b.m.skippedConsent.Add(noConsent)
	w.b.m.skippedVisitor.Add(noVisitor)
	w.b.m.skippedNew.Add(newVisitor)
	w.b.m.skippedInvalid.Add(invalid)
	for c, n := range sensitive {
		if ctr := w.b.m.sensitive[c]; ctr != nil {
			ctr.Add(n)
		}
	}
	mi := int32(len(w.msgs))
	w.msgs = append(w.msgs, batchMsg{m: m})
	for _, s := range w.staged {
		vi, ok := w.index[s.visitor]
		if !ok {
			vi = int32(len(w.visits))
			if cap(w.visits) > len(w.visits) {
				w.visits = w.visits[:vi+1]
				v := &w.visits[vi]
				v.visitor, v.changes, v.msgs = s.visitor, v.changes[:0], v.msgs[:0]
			} else {
				w.visits = append(w.visits, visit{visitor: s.visitor})
			}
			w.index[s.visitor] = vi
		}
		v := &w.visits[vi]
		v.changes = append(v.changes, s.c)
		if n := len(v.msgs); n == 0 || v.msgs[n-1] != mi {
			v.msgs = append(v.msgs, mi)
		}
		w.events++
	}
}

const maxRounds = 16 // conflict rounds before a batch's messages are redelivered

// flush writes every visit of the batch, then acknowledges its messages.
func (w *worker) flush() {
	if len(w.msgs) == 0 {
		return
	}
	start := time.Now()
	tax := w.b.live.Load()
	todo := make([]int32, len(w.visits))
	for i := range todo {
		todo[i] = int32(i)
	}
	for round := 0; len(todo) > 0; round++ {
		if round == maxRounds {
			for _, vi := range todo {
				w.fail(vi)
			}
			break
		}
		if round > 0 {
			todo = w.reload(todo)
		}
		todo = w.write(todo, tax)
	}
	var acks sync.WaitGroup
	for i := range w.msgs {
		bm := &w.msgs[i]
		if bm.failed {
			_ = bm.m.NakWithDelay(time.Second)
			w.b.m.nacked.Inc()
			continue
		}
		acks.Go(func() { w.ack(bm.m) })
		w.b.m.acked.Inc()
	}
	acks.Wait()
	w.b.m.writes.Add(w.writes)
	w.b.m.applied.Add(w.applied)
	w.b.m.duplicates.Add(w.dups)
	w.writes, w.applied, w.dups = 0, 0, 0
	w.b.m.flush.Observe(time.Since(start).Seconds())
	// Reset the batch, keeping its memory.
	clear(w.msgs)
	w.msgs = w.msgs[:0]
	clear(w.index)
	for i := range w.visits {
		v := &w.visits[i]
		clear(v.changes)
		v.visitor, v.changes, v.msgs = "", v.changes[:0], v.msgs[:0]
	}
	w.visits = w.visits[:0]
	clear(w.contribs)
	w.contribs = w.contribs[:0]
	w.events = 0
	w.arena = w.arena[:0]
	if w.abandoned {
		// Writes left unacknowledged may still be sent again by the client:
		// their bytes must stay as they are.
		w.arena, w.abandoned = nil, false
	}
	if len(w.records) > w.b.o.maxCached/max(len(w.b.o.owned), 1) {
		w.shrink()
	}
}

// fail marks the messages of a visit for redelivery.
func (w *worker) fail(vi int32) {
	for _, mi := range w.visits[vi].msgs {
		w.msgs[mi].failed = true
	}
}

// shrink forgets an eighth of the held records; they are read again when
// their visitors come back.
func (w *worker) shrink() {
	n := len(w.records) / 8
	for k := range w.records {
		if n--; n < 0 {
			break
		}
		delete(w.records, k)
	}
}

type pendingWrite struct {
	vi      int32
	h       *held
	applied int
	fut     jetstream.PubAckFuture
}

// write applies each visit to the record held for it (or an empty one,
// created only if none exists) and writes them all, at most b.inflight at a
// time; it returns the visits that met a conflict. Failures mark their
// messages for redelivery.
func (w *worker) write(todo []int32, tax *Taxonomy) (conflicts []int32) {
	pol := &w.b.o.policy
	pending := make([]pendingWrite, 0, min(len(todo), w.b.inflight))
	msgs := make([]nats.Msg, len(todo))
	head := 0
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	w.expired = false
	for _, vi := range todo {
		v := &w.visits[vi]
		h, ok := w.records[v.visitor]
		if !ok {
			h = &held{rec: Record{Visitor: v.visitor}}
		}
		// The held record changes in place; it is dropped if the write fails.
		n := pol.apply(&h.rec, v.changes, tax)
		if n == 0 {
			w.dups += uint64(len(v.changes))
			continue
		}
		start := len(w.arena)
		w.arena = h.rec.AppendMsgpack(w.arena)
		m := &msgs[len(pending)]
		*m = nats.Msg{
			Subject: w.b.subjects + v.visitor,
			Data:    w.arena[start:len(w.arena):len(w.arena)],
			Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(h.rev, 10)},
				jetstream.MsgIDHeader: []string{w.b.writeID + strconv.FormatUint(w.b.writes.Add(1), 36)}},
		}
		if ttl := w.b.o.recordTTL; ttl > 0 {
			m.Header.Set(jetstream.MsgTTLHeader, ttl.String())
		}
		if len(pending)-head >= w.b.inflight {
			if w.settle(&pending[head], timeout.C) {
				conflicts = append(conflicts, pending[head].vi)
			}
			head++
		}
		fut, err := w.b.js.PublishMsgAsync(m)
		if err != nil {
			w.writeFailed(vi, err)
			continue
		}
		pending = append(pending, pendingWrite{vi: vi, h: h, applied: n, fut: fut})
	}
	for i := head; i < len(pending); i++ {
		if w.settle(&pending[i], timeout.C) {
			conflicts = append(conflicts, pending[i].vi)
		}
	}
	return conflicts
}

// ackTimeout bounds the wait for the acknowledgements of one batch.
const ackTimeout = 30 * time.Second

var errAckTimeout = errors.New("segments: no acknowledgement for a record write")

// settle waits for a write's acknowledgement; it reports a conflict.
func (w *worker) settle(p *pendingWrite, timeout <-chan time.Time) (conflict bool) {
	v := &w.visits[p.vi]
	var (
		ack *jetstream.PubAck
		err error
	)
	if w.expired {
		select {
		case ack = <-p.fut.Ok():
		case err = <-p.fut.Err():
		default:
			w.abandoned, err = true, errAckTimeout
		}
	} else {
		select {
		case ack = <-p.fut.Ok():
		case err = <-p.fut.Err():
		case <-timeout:
			w.expired, w.abandoned, err = true, true, errAckTimeout
		}
	}
	if err != nil && !isConflict(err) {
		// The write may be stored with its answer lost. Sent again under
		// the same message id it is stored at most once, and the answer
		// says which; a redelivery instead, later, would apply the events
		// twice once the record's window of applied messages has moved on.
		ack, err = w.resend(p.fut.Msg())
	}
	if err != nil {
		delete(w.records, v.visitor)
		if isConflict(err) {
			w.b.m.conflicts.Inc()
			return true
		}
		w.writeFailed(p.vi, err)
		return false
	}
	p.h.rev = ack.Sequence
	w.records[v.visitor] = p.h
	w.writes++
	w.applied += uint64(p.applied)
	w.dups += uint64(len(v.changes) - p.applied)
	if w.b.onWrite != nil {
		w.b.onWrite(v.changes)
	}
	return false
}

func (w *worker) writeFailed(vi int32, err error) {
	delete(w.records, w.visits[vi].visitor)
	w.b.m.writeErrors.Inc()
	w.b.o.log.Warn("segments: record write failed; its messages will be redelivered", "partition", w.part, "err", err)
	w.fail(vi)
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// reload reads the current record of each visit, a few at a time, and holds
// it; it returns the visits to write again.
func (w *worker) reload(todo []int32) []int32 {
	const readers = 16
	type result struct {
		vi  int32
		h   *held
		err error
	}
	results := make([]result, len(todo))
	var wg sync.WaitGroup
	next := make(chan int, len(todo))
	for i := range todo {
		next <- i
	}
	close(next)
	for range min(readers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				vi := todo[i]
				h, err := w.readRetry(w.visits[vi].visitor)
				results[i] = result{vi: vi, h: h, err: err}
			}
		}()
	}
	wg.Wait()
	out := todo[:0]
	for _, r := range results {
		if r.err != nil {
			w.b.m.readErrors.Inc()
			w.b.o.log.Warn("segments: record read failed; its messages will be redelivered", "partition", w.part, "err", r.err)
			w.fail(r.vi)
			continue
		}
		w.records[w.visits[r.vi].visitor] = r.h
		out = append(out, r.vi)
	}
	return out
}

// read returns the stored record of visitor and its revision. An erased or
// expired record reads as empty, with Since set so that events captured
// before the erasure are not applied.
func (w *worker) read(visitor string) (*held, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := w.kvs.GetLastMsgForSubject(ctx, w.b.subjects+visitor)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return &held{rec: Record{Visitor: visitor}}, nil
	}
	if err != nil {
		return nil, err
	}
	h := &held{rev: m.Sequence}
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" || len(m.Data) == 0 {
		h.rec = Record{Visitor: visitor, Since: m.Time.UnixMilli()}
		return h, nil
	}
	if err := DecodeRecord(m.Data, &h.rec); err != nil {
		// Overwrite what cannot be read rather than stall the partition.
		w.b.o.log.Error("segments: stored record does not decode; starting it again", "partition", w.part, "err", err)
		h.rec = Record{Visitor: visitor}
	}
	h.rec.Visitor = visitor
	return h, nil
}
