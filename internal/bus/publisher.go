package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	Linger      time.Duration // how long a batch may wait for more events (default 5ms)
	BatchBytes  int           // flush a batch at this size (default 64 KiB)
	BatchEvents int           // or at this many events (default 512)
	QueueLen    int           // batches waiting to be sent before new ones are dropped (default 1024)
	MaxPending  int           // unacknowledged messages in flight (default 256)
	MaxAttempts int           // publish attempts per batch before it counts as dropped (default 8)
	AckTimeout  time.Duration // how long to wait for an acknowledgement (default 5s)
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
		o.Linger = 5 * time.Millisecond
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 64 << 10
	}
	if o.BatchEvents <= 0 || o.BatchEvents > event.MaxBatch {
		o.BatchEvents = 512
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1024
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
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
// pending acknowledgements. Publish never blocks on NATS: when the queue is
// full or NATS is away past the retries, events are counted as dropped.
//
// Every event handed to Publish ends up counted exactly once as acknowledged
// or dropped; Stop waits for that.
type Publisher struct {
	js     jetstream.JetStream
	opts   PublisherOptions
	scrub  *privacy.Scrubber
	copies sync.Pool // *scrubbed
	shards []shard
	queue  chan *nats.Msg
	closed atomic.Bool
	done   chan struct{} // closes when the flusher has stopped
	sent   sync.WaitGroup

	inflight atomic.Int64 // events handed over and not yet acked or dropped
	mu       sync.Mutex
	attempts map[*nats.Msg]int

	accepted, published, acked, dropped, retried *metrics.Counter
}

type shard struct {
	mu      sync.Mutex
	subject string
	buf     []byte
	n       int
	first   event.ID
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
	p := &Publisher{opts: opts, scrub: scrub, queue: make(chan *nats.Msg, opts.QueueLen), done: make(chan struct{}), attempts: map[*nats.Msg]int{}}
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
	reg.Gauge("adsyn_event_queue_batches", "Event batches waiting to be sent to NATS.", func() float64 { return float64(len(p.queue)) })
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
		s.first = e.ID
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
		jetstream.MsgIDHeader: {s.first.String()},
		event.HeaderCount:     {strconv.Itoa(s.n)},
	}}
	n := s.n
	s.buf, s.n = nil, 0
	select {
	case p.queue <- m:
	default:
		p.drop(m, n, errors.New("queue full"))
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

func (p *Publisher) send() {
	defer p.sent.Done()
	for m := range p.queue {
		p.publish(m)
	}
}

// publish sends m, waiting (bounded) while NATS is away or too many acks are pending.
func (p *Publisher) publish(m *nats.Msg) {
	p.published.Add(uint64(count(m)))
	for {
		_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
		if err == nil {
			return
		}
		if !p.again(m, err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// again records a failed attempt and reports whether to try m once more.
func (p *Publisher) again(m *nats.Msg, err error) bool {
	p.mu.Lock()
	p.attempts[m]++
	n := p.attempts[m]
	p.mu.Unlock()
	if n >= p.opts.MaxAttempts {
		p.drop(m, count(m), err)
		return false
	}
	p.retried.Inc()
	return true
}

func (p *Publisher) onAck(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	n := count(m)
	p.acked.Add(uint64(n))
	p.finish(m, n)
}

func (p *Publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	if !p.again(m, err) {
		return
	}
	// Same Nats-Msg-Id: if the first attempt did land, JetStream drops the copy.
	go func() {
		time.Sleep(100 * time.Millisecond)
		p.publishRetry(m)
	}()
}

func (p *Publisher) publishRetry(m *nats.Msg) {
	for {
		_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
		if err == nil || !p.again(m, err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Publisher) drop(m *nats.Msg, n int, err error) {
	p.dropped.Add(uint64(n))
	p.opts.Log.Warn("events dropped", "subject", m.Subject, "events", n, "err", err)
	p.finish(m, n)
}

func (p *Publisher) finish(m *nats.Msg, n int) {
	p.mu.Lock()
	delete(p.attempts, m)
	p.mu.Unlock()
	if cap(m.Data) >= p.opts.BatchBytes {
		bufPool.Put(m.Data[:0])
	}
	p.inflight.Add(int64(-n))
}

func count(m *nats.Msg) int {
	n, err := strconv.Atoi(m.Header.Get(event.HeaderCount))
	if err != nil || n < 1 {
		return 1
	}
	return n
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
	close(p.queue)
	p.sent.Wait()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			left := p.inflight.Load()
			p.dropped.Add(uint64(left))
			p.inflight.Add(-left)
			return errors.New("bus: publisher stopped with events unacknowledged")
		case <-t.C:
		}
	}
	return nil
}
