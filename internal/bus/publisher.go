package bus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/privacy"
)

// PublisherOptions tune the batching event publisher.
type PublisherOptions struct {
	Partitions  int           // N of the partition scheme (default event.DefaultPartitions)
	Linger      time.Duration // how long a batch may wait for more events (default 20ms)
	BatchBytes  int           // flush a batch at this size (default 64 KiB)
	BatchEvents int           // or at this many events (default 512)
	// BufferBytes bounds the encoded events held until JetStream acknowledges
	// them (queued, in flight or waiting to be retried); a batch that would go
	// past it is dropped and counted (default 256 MiB).
	BufferBytes int64
	MaxPending  int           // unacknowledged messages in flight (default 256)
	AckTimeout  time.Duration // how long to wait for an acknowledgement (default 5s)
	MaxBackoff  time.Duration // longest wait between attempts of one batch (default 2s)
	// Privacy configures the choke point every event passes (P1, P2, P6):
	// the IP prefixes kept, and the guard.
	Privacy privacy.Options
	Log     *slog.Logger
	Metrics *metrics.Registry
}

func (o *PublisherOptions) defaults() {
	if o.Partitions <= 0 {
		o.Partitions = event.DefaultPartitions
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond // fewer, fuller messages: each costs NATS, the store and an ack
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 64 << 10
	}
	if o.BatchEvents <= 0 || o.BatchEvents > event.MaxBatch {
		o.BatchEvents = 512
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 256 << 20
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
}

// Publisher batches events per subject (kind and partition) into messages of
// ADSYN_EVENTS and publishes them asynchronously with a bounded number of
// pending acknowledgements. Publish never blocks on NATS: while NATS is away,
// batches wait in memory up to BufferBytes and are retried with backoff until
// acknowledged; only a batch that would go past the bound is dropped.
//
// Each batch carries a random Nats-Msg-Id of its own, kept across its
// retries: a retry of a batch that did land is discarded by JetStream, and no
// event's id (a click's is fixed per token) can make another batch look like
// a duplicate.
//
// Every event handed to Publish ends up counted exactly once as acknowledged
// or dropped; Stop waits for that.
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	opts   PublisherOptions
	scrub  *privacy.Scrubber
	copies sync.Pool // *scrubbed
	shards []shard
	closed atomic.Bool
	done   chan struct{} // closes when the flusher has stopped
	wake   chan struct{} // a batch was queued
	quit   chan struct{} // closes when Stop gives up or is done: no more sends
	sent   sync.WaitGroup

	inflight atomic.Int64 // events handed over and not yet acked or dropped

	mu      sync.Mutex
	queue   []*nats.Msg          // batches waiting to be sent, oldest first
	pending map[*nats.Msg]*batch // every batch handed over and not yet acked or dropped
	bytes   int64                // encoded bytes of the pending batches
	dropLog struct {
		at     time.Time
		events int
	}

	accepted, published, acked, dropped, retried *metrics.Counter
}

// batch is what the publisher keeps of a message it has not finished with.
type batch struct {
	events   int
	attempts int
	busy     bool // queued or being sent: its buffer may not go back to the pool
}

type shard struct {
	mu      sync.Mutex
	subject string
	buf     []byte
	n       int
	since   time.Time
	_       [32]byte // keep neighbouring shards' locks off one cache line
}

// scrubbed is the publisher's copy of an event being scrubbed, so the
// caller's event and its categories stay as they were.
type scrubbed struct {
	ev   event.Event
	cats []string
	sc   privacy.Scratch
}

var bufPool = sync.Pool{New: func() any { return make([]byte, 0, 64<<10) }}

// NewPublisher starts a publisher on nc.
func NewPublisher(nc *nats.Conn, opts PublisherOptions) (*Publisher, error) {
	opts.defaults()
	scrub, err := privacy.New(opts.Privacy)
	if err != nil {
		return nil, fmt.Errorf("bus: publisher: %w", err)
	}
	p := &Publisher{nc: nc, opts: opts, scrub: scrub, done: make(chan struct{}), wake: make(chan struct{}, 1),
		quit: make(chan struct{}), pending: map[*nats.Msg]*batch{}}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.MaxPending),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		return nil, err
	}
	p.js = js
	kinds := event.Kinds()
	p.shards = make([]shard, (len(kinds)+1)*opts.Partitions)
	for _, k := range append([]event.Kind{event.KindUnknown}, kinds...) {
		for part := range opts.Partitions {
			p.shards[int(k)*opts.Partitions+part].subject = event.Subject(k, part)
		}
	}
	reg := opts.Metrics
	const name, help = "adsyn_events_total", "Events by publishing stage: accepted by the edge, published to NATS, acknowledged by JetStream, dropped."
	p.accepted = reg.Counter(name, help, "stage", "accepted")
	p.published = reg.Counter(name, help, "stage", "published")
	p.acked = reg.Counter(name, help, "stage", "acknowledged")
	p.dropped = reg.Counter(name, help, "stage", "dropped")
	p.retried = reg.Counter("adsyn_event_publish_retries_total", "Event messages published again after a failed or missing acknowledgement.")
	reg.Gauge("adsyn_events_inflight", "Events accepted and not yet acknowledged or dropped.", func() float64 { return float64(p.inflight.Load()) })
	reg.Gauge("adsyn_event_queue_batches", "Event batches waiting to be sent to NATS.", func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return float64(len(p.queue))
	})
	reg.Gauge("adsyn_event_buffer_bytes", "Encoded events held until JetStream acknowledges them.", func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return float64(p.bytes)
	})
	reg.Gauge("adsyn_event_buffer_limit_bytes", "Bound of adsyn_event_buffer_bytes, past which events are dropped.", func() float64 {
		return float64(opts.BufferBytes)
	})
	p.sent.Add(1)
	go p.send()
	go p.flushLoop()
	return p, nil
}

// Publish adds e to its subject's batch, after the privacy choke point has
// scrubbed a copy of it (P1, P2, P6): this is the one way into
// ADSYN_EVENTS. e is encoded before Publish returns, so its strings may
// point into request memory; e itself is left as it was. It reports false
// when the event was dropped (and counted as such).
func (p *Publisher) Publish(e *event.Event) bool {
	p.accepted.Inc()
	x, _ := p.copies.Get().(*scrubbed)
	if x == nil {
		x = &scrubbed{}
	}
	x.ev = *e
	x.cats = append(x.cats[:0], e.Categories...)
	x.ev.Categories = x.cats
	p.scrub.Scrub(&x.ev, &x.sc)
	ok := p.add(&x.ev)
	clear(x.cats) // hold no request memory while pooled
	x.ev = event.Event{}
	p.copies.Put(x)
	return ok
}

// add appends a scrubbed event to its subject's batch.
func (p *Publisher) add(e *event.Event) bool {
	s := &p.shards[int(e.Kind)*p.opts.Partitions+e.Partition(p.opts.Partitions)]
	s.mu.Lock()
	if p.closed.Load() {
		s.mu.Unlock()
		p.dropped.Inc()
		return false
	}
	if s.n == 0 {
		s.since = time.Now()
		if s.buf == nil {
			s.buf = bufPool.Get().([]byte)[:0]
		}
	}
	s.buf = e.AppendMsgpack(s.buf)
	s.n++
	p.inflight.Add(1)
	if len(s.buf) >= p.opts.BatchBytes || s.n >= p.opts.BatchEvents {
		p.flushLocked(s)
	}
	s.mu.Unlock()
	return true
}

// PublishOne scrubs e at the same choke point as Publish and stores it
// alone, waiting for JetStream's acknowledgement: for a door that answers
// only once its event is stored (call reports). e is left as it was.
func PublishOne(ctx context.Context, js jetstream.JetStream, scrub *privacy.Scrubber, partitions int, e *event.Event) (*jetstream.PubAck, error) {
	c := *e
	c.Categories = append([]string(nil), e.Categories...)
	var sc privacy.Scratch
	scrub.Scrub(&c, &sc)
	m := nats.NewMsg(event.Subject(c.Kind, c.Partition(partitions)))
	m.Data = c.Marshal()
	m.Header.Set(jetstream.MsgIDHeader, c.ID.String())
	m.Header.Set(event.HeaderCount, "1")
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s: %w", c.ID, err)
	}
	return ack, nil
}

// flushLocked hands s's batch to the sender; s.mu is held.
func (p *Publisher) flushLocked(s *shard) {
	if s.n == 0 {
		return
	}
	m := &nats.Msg{Subject: s.subject, Data: s.buf, Header: nats.Header{
		jetstream.MsgIDHeader: {event.NewID().String()},
		event.HeaderCount:     {strconv.Itoa(s.n)},
	}}
	n := s.n
	s.buf, s.n = nil, 0
	p.mu.Lock()
	if p.bytes+int64(len(m.Data)) > p.opts.BufferBytes {
		p.mu.Unlock()
		p.dropFresh(m, n)
		return
	}
	p.bytes += int64(len(m.Data))
	p.pending[m] = &batch{events: n, busy: true}
	p.queue = append(p.queue, m)
	p.mu.Unlock()
	p.published.Add(uint64(n))
	p.signal()
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Publisher) flushLoop() {
	defer close(p.done)
	t := time.NewTicker(p.opts.Linger / 2)
	defer t.Stop()
	for range t.C {
		if p.closed.Load() {
			return
		}
		now := time.Now()
		for i := range p.shards {
			s := &p.shards[i]
			s.mu.Lock()
			if s.n > 0 && now.Sub(s.since) >= p.opts.Linger {
				p.flushLocked(s)
			}
			s.mu.Unlock()
		}
	}
}

// send publishes queued batches while the connection is up; it ends when
// Stop is done with it.
func (p *Publisher) send() {
	defer p.sent.Done()
	for {
		select {
		case <-p.quit:
			return
		case <-p.wake:
		}
		for {
			if !p.connected() {
				break
			}
			p.mu.Lock()
			if len(p.queue) == 0 {
				p.mu.Unlock()
				break
			}
			m := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if len(p.queue) == 0 {
				p.queue = p.queue[:0:0] // let the backing array go after a burst
			}
			if p.pending[m] == nil {
				p.mu.Unlock()
				continue
			}
			p.mu.Unlock()
			_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
			p.mu.Lock()
			if b := p.pending[m]; b != nil {
				b.busy = false
			}
			p.mu.Unlock()
			if err != nil {
				p.retry(m, err)
			}
		}
	}
}

// connected waits, while NATS is away, for the connection to come back; it
// reports false when Stop has given up.
func (p *Publisher) connected() bool {
	if p.nc.IsConnected() {
		return true
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !p.nc.IsConnected() {
		select {
		case <-p.quit:
			return false
		case <-t.C:
		}
	}
	return true
}

// retry puts m back in the queue after a backoff that grows with its
// attempts. Its Nats-Msg-Id stays: if an earlier attempt did land, JetStream
// discards the copy.
func (p *Publisher) retry(m *nats.Msg, err error) {
	p.mu.Lock()
	b := p.pending[m]
	if b == nil { // finished already (Stop gave up on it)
		p.mu.Unlock()
		return
	}
	b.attempts++
	d := p.backoff(b.attempts)
	p.mu.Unlock()
	p.retried.Inc()
	if b.attempts == 1 || b.attempts%10 == 0 {
		p.opts.Log.Debug("event batch publish failed, retrying", "subject", m.Subject, "attempt", b.attempts, "err", err)
	}
	time.AfterFunc(d, func() {
		p.mu.Lock()
		b := p.pending[m]
		if b == nil {
			p.mu.Unlock()
			return
		}
		b.busy = true
		p.queue = append(p.queue, m)
		p.mu.Unlock()
		p.signal()
	})
}

// backoff doubles from 50ms up to MaxBackoff, with jitter so that batches
// failed together do not come back together.
func (p *Publisher) backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt-1, 10)
	d = min(d, p.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func (p *Publisher) onAck(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	if n, ok := p.finish(m); ok {
		p.acked.Add(uint64(n))
	}
}

func (p *Publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	p.retry(m, err)
}

// dropFresh counts a batch that did not fit in the buffer; the log is
// limited to a line a second.
func (p *Publisher) dropFresh(m *nats.Msg, n int) {
	p.dropped.Add(uint64(n))
	p.inflight.Add(int64(-n))
	bufPool.Put(m.Data[:0])
	p.logDrop(n, "event buffer full")
}

func (p *Publisher) logDrop(n int, why string) {
	p.mu.Lock()
	p.dropLog.events += n
	now := time.Now()
	if now.Sub(p.dropLog.at) < time.Second {
		p.mu.Unlock()
		return
	}
	events := p.dropLog.events
	p.dropLog.at, p.dropLog.events = now, 0
	p.mu.Unlock()
	p.opts.Log.Warn("events dropped", "events", events, "reason", why, "buffer_limit_bytes", p.opts.BufferBytes)
}

// finish forgets m and reports its event count; ok is false when m was
// finished already, so that a late acknowledgement is never counted twice.
func (p *Publisher) finish(m *nats.Msg) (n int, ok bool) {
	p.mu.Lock()
	b := p.pending[m]
	if b == nil {
		p.mu.Unlock()
		return 0, false
	}
	delete(p.pending, m)
	p.bytes -= int64(len(m.Data))
	p.mu.Unlock()
	p.inflight.Add(int64(-b.events))
	if !b.busy && cap(m.Data) >= p.opts.BatchBytes {
		bufPool.Put(m.Data[:0])
	}
	return b.events, true
}

// Stats is a snapshot of the publisher's counters.
type Stats struct {
	Accepted, Published, Acked, Dropped uint64
	Inflight                            int64
}

// Stats returns the counters.
func (p *Publisher) Stats() Stats {
	return Stats{p.accepted.Load(), p.published.Load(), p.acked.Load(), p.dropped.Load(), p.inflight.Load()}
}

// Stop flushes every batch and waits until each accepted event is
// acknowledged or counted as dropped, or ctx ends (what is left then counts
// as dropped). Call it after the edge has stopped serving.
func (p *Publisher) Stop(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	<-p.done
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		p.flushLocked(s)
		s.mu.Unlock()
	}
	defer p.sent.Wait()
	defer close(p.quit)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			left := 0
			for m, b := range p.pending {
				left += b.events
				delete(p.pending, m)
			}
			p.queue, p.bytes = nil, 0
			p.mu.Unlock()
			p.dropped.Add(uint64(left))
			p.inflight.Add(int64(-left))
			p.logDrop(left, "stopped before acknowledgement")
			return fmt.Errorf("bus: publisher stopped with %d events unacknowledged: %w", left, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
