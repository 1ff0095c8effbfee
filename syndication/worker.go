package syndication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/profiles"
)

// Worker follows the profile change feed and delivers partner views. Run as
// many as wanted, in one process or several: they share the change consumer
// and each partner's lanes.
type Worker struct {
	js       jetstream.JetStream
	reg      *Registry
	led      *Ledger
	profiles jetstream.Stream
	client   *http.Client
	o        options
	inflight sync.WaitGroup
	fanout   chan struct{} // bounds changes waiting for their tasks to be stored
	lanes    atomic.Int64
	recent   recent                      // newest profiles seen on the change feed
	known    map[string]bool             // partners reconcile has seen (its goroutine only)
	purged   map[string]bool             // partners not delivering whose tasks were purged (reconcile's)
	logq     chan jetstream.PubAckFuture // delivery log writes awaiting their ack

	changes, changeErrors, logErrors                    *metrics.Counter
	skipped, delivered, published, dead, disabled, reqd *metrics.Counter
	attemptsOK, attemptsRetry, attemptsRefused, lost    *metrics.Counter
	latency                                             *metrics.Histogram
}

// NewWorker prepares a worker; Run starts it.
func NewWorker(ctx context.Context, js jetstream.JetStream, reg *Registry, led *Ledger, opts ...Option) (*Worker, error) {
	o, err := apply(opts)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, profilesStream)
	if err != nil {
		return nil, fmt.Errorf("syndication: open %s: %w", profilesStream, err)
	}
	w := &Worker{js: js, reg: reg, led: led, profiles: s, o: o, fanout: make(chan struct{}, 512),
		recent: recent{m: map[string]cached{}}, known: map[string]bool{}, purged: map[string]bool{}}
	w.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: the dial check must see the partner's own address.
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second,
				Control: dialControl(o.allowPrivate)}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// 3xx is a failure: redirects are not followed (Standard Webhooks).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	m := o.metrics
	w.changes = m.Counter("adsyn_synd_changes_total", "Profile changes fanned out to partner lanes.")
	w.changeErrors = m.Counter("adsyn_synd_change_errors_total", "Profile changes whose tasks could not be stored (redelivered).")
	w.logErrors = m.Counter("adsyn_synd_log_errors_total", "Delivery log entries NATS did not store.")
	task := func(outcome string) *metrics.Counter {
		return m.Counter("adsyn_synd_tasks_total", "Partner tasks by outcome.", "outcome", outcome)
	}
	w.skipped, w.delivered, w.published = task("skipped"), task(OutcomeDelivered), task(OutcomePublished)
	w.dead, w.disabled, w.reqd = task(OutcomeDeadLetter), task(OutcomeDisabled), task("requeued")
	attempt := func(result string) *metrics.Counter {
		return m.Counter("adsyn_synd_attempts_total", "Webhook requests by result.", "result", result)
	}
	w.attemptsOK, w.attemptsRetry, w.attemptsRefused = attempt("ok"), attempt("retry"), attempt("refused")
	w.lost = m.Counter("adsyn_synd_leases_lost_total", "Tasks a stalled worker left to another (a worker overloaded or cut off from NATS).")
	w.latency = m.Histogram("adsyn_synd_request_seconds", "Webhook request duration.", metrics.LatencyBuckets)
	m.Gauge("adsyn_synd_lanes", "Partner lanes running in this process.", func() float64 { return float64(w.lanes.Load()) })
	return w, nil
}

// newPartner is how recent a partner's creation must be for a worker that
// first sees it to resync it.
const newPartner = 30 * time.Second

// run is one partner's lanes in this worker.
type run struct {
	partner atomic.Pointer[Partner]
	limit   limiter
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// Run consumes changes and runs the lanes of every active partner until ctx
// ends, then stops gracefully: tasks in flight are requeued, changes being
// fanned out finish.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, profilesStream, jetstream.ConsumerConfig{
		Durable:       ChangeConsumer,
		Description:   "syndication workers: profile changes",
		FilterSubject: profilesSubject + ">",
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.o.ackWait,
		MaxAckPending: 1024,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("syndication: change consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { w.onChange(ctx, m) },
		jetstream.PullMaxMessages(256),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.o.log.Warn("syndication: change feed", "err", err)
		}))
	if err != nil {
		return fmt.Errorf("syndication: consume changes: %w", err)
	}
	w.logq = make(chan jetstream.PubAckFuture, 4096)
	logsDone := make(chan struct{})
	go w.drainLog(logsDone)
	changed, unsubscribe := w.reg.subscribe()
	defer unsubscribe()
	runs := map[string]*run{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reconnects := w.js.Conn().Stats().Reconnects
	for {
		if n := w.js.Conn().Stats().Reconnects; n != reconnects {
			// The server may have restarted and lost the lanes' in-memory
			// consumers: start the lanes afresh, which recreates them.
			reconnects = n
			for id := range runs {
				w.stopRun(runs, id)
			}
		}
		w.reconcile(ctx, runs)
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			cc.Drain() // buffered changes are still fanned out
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second): // a drain can hang after a server restart
				cc.Stop()
			}
			for _, r := range runs {
				r.cancel()
			}
			for _, r := range runs {
				r.done.Wait()
			}
			w.inflight.Wait()
			close(w.logq)
			<-logsDone
			return nil
		}
	}
}

// reconcile starts the lanes of partners that receive (active, or disabled
// by an operator: deletions only), stops those of partners gone or removed,
// and passes contract and rate changes to running lanes.
func (w *Worker) reconcile(ctx context.Context, runs map[string]*run) {
	seen := map[string]bool{}
	defer func() {
		for id := range seen {
			w.known[id] = true
		}
	}()
	for _, p := range w.reg.List() {
		seen[p.ID] = true
		r := runs[p.ID]
		switch {
		case p.delivers() && r == nil:
			if !w.known[p.ID] && time.Since(p.Created) < newPartner {
				// Changes made while this process had not yet seen the new
				// partner were fanned out without it; its creation resync
				// may have listed the users before them.
				go func(id string) {
					if _, err := w.reg.Resync(ctx, id); err != nil && ctx.Err() == nil {
						w.o.log.Error("syndication: resync of a new partner", "partner", id, "err", err)
					}
				}(p.ID)
			}
			r = &run{}
			r.partner.Store(&p)
			r.limit.set(p.RateLimit)
			var lctx context.Context
			lctx, r.cancel = context.WithCancel(ctx)
			for s := 0; s < p.Shards; s++ {
				r.done.Add(1)
				go w.lane(lctx, r, s)
			}
			runs[p.ID] = r
			w.o.log.Info("syndication: partner lanes started", "partner", p.ID, "lanes", p.Shards)
		case p.delivers():
			r.partner.Store(&p)
			r.limit.set(p.RateLimit)
		case r != nil:
			w.stopRun(runs, p.ID)
		}
		if p.delivers() {
			delete(w.purged, p.ID)
		} else if !w.purged[p.ID] {
			w.purgeTasks(ctx, p.ID)
		}
	}
	for id := range runs {
		if !seen[id] {
			w.stopRun(runs, id)
		}
	}
}

func (w *Worker) stopRun(runs map[string]*run, id string) {
	r := runs[id]
	r.cancel()
	r.done.Wait()
	delete(runs, id)
	w.o.log.Info("syndication: partner lanes stopped", "partner", id)
}

// onChange turns one profile change into one task per partner and acks it
// once every task is stored.
func (w *Worker) onChange(ctx context.Context, m jetstream.Msg) {
	user := strings.TrimPrefix(m.Subject(), profilesSubject)
	md, err := m.Metadata()
	if err != nil || !profiles.ValidID(user) {
		w.o.log.Error("syndication: change feed message ignored", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	if isDeletion(m.Headers()) {
		w.recent.put(user, md.Sequence.Stream, nil)
	} else if p, err := w.o.decode(ctx, m.Data()); err == nil {
		p.Version = md.Sequence.Stream
		w.recent.put(user, md.Sequence.Stream, p)
	}
	partners := w.reg.List()
	futures := make([]jetstream.PubAckFuture, 0, len(partners))
	for i := range partners {
		if !partners[i].delivers() {
			continue // no lane would take it; enabling the partner resyncs
		}
		f, err := enqueue(w.js, &partners[i], user, md.Sequence.Stream)
		if err != nil {
			w.changeErrors.Inc()
			w.o.log.Error("syndication: fan-out", "user", user, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		futures = append(futures, f)
	}
	w.fanout <- struct{}{}
	w.inflight.Add(1)
	go func() {
		defer func() { <-w.fanout; w.inflight.Done() }()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.o.ackWait*3/4)
		defer cancel()
		if err := awaitAll(actx, futures); err != nil {
			w.changeErrors.Inc()
			w.o.log.Error("syndication: fan-out", "user", user, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		w.changes.Inc()
		_ = m.Ack()
	}()
}

// lane delivers the tasks of one shard of one partner, one at a time.
func (w *Worker) lane(ctx context.Context, r *run, shard int) {
	defer r.done.Done()
	w.lanes.Add(1)
	defer w.lanes.Add(-1)
	id := r.partner.Load().ID
	for ctx.Err() == nil {
		cons, err := w.js.CreateOrUpdateConsumer(ctx, StreamOut, laneConfig(id, shard, w.o.laneAckWait()))
		var it jetstream.MessagesContext
		if err == nil {
			// One message is in flight per lane (MaxAckPending 1); a larger
			// pull batch only saves a pull request per message. Missing
			// heartbeats end the iterator, so a lane whose consumer vanished
			// (its state is in memory: a restarted server) is recreated.
			it, err = cons.Messages(jetstream.PullMaxMessages(16), jetstream.PullExpiry(10*time.Second),
				jetstream.PullHeartbeat(3*time.Second), jetstream.WithMessagesErrOnMissingHeartbeat(true))
		}
		if err != nil {
			if ctx.Err() == nil {
				w.o.log.Warn("syndication: lane not started; retrying", "partner", id, "shard", shard, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if ctx.Err() != nil {
					w.handBack(it)
				} else if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					w.o.log.Warn("syndication: lane restarts", "partner", id, "shard", shard, "err", err)
				}
				break
			}
			w.process(ctx, r, m)
		}
		it.Stop()
	}
}

// handBack requeues what a stopping lane has buffered at once, rather than
// leaving it to the ack wait. The waits are bounded: a drain can hang on a
// connection that came back from a server restart.
func (w *Worker) handBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		m, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			return
		}
		_ = m.Nak()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// delivery is one message to send, prepared from the newest profile.
type delivery struct {
	user    string
	version uint64
	typ     string
	id      string
	hash    string // of the view; empty for a deletion
	fields  []profiles.Field
	body    []byte
	prev    state
	prevRev uint64 // revision of the state record to replace; 0 when absent
}

// result is how a delivery ended.
type result struct {
	class      class
	status     int
	answer     string
	err        string
	retryAfter string
	attempts   int
	retryIn    time.Duration // stopped while backing off: the rest of the wait
}

// lease is a lane's hold on its task: JetStream's ack wait, renewed by
// progress signals. Its end is reckoned a margin before the server's, and
// every side effect (request, state write, ack) runs under a deadline inside
// it, so a worker that stalls past its lease cannot act after another worker
// has taken the task over: deliveries of a (partner, user) never overlap.
type lease struct {
	m      jetstream.Msg
	end    time.Time
	length time.Duration // ack wait minus the margin
	need   time.Duration // renew when less than this is left
}

func (w *Worker) lease(m jetstream.Msg) *lease {
	l := &lease{m: m, length: w.o.laneAckWait() - w.o.ackWait/2, need: w.o.timeout + w.o.ackWait/4}
	l.end = time.Now().Add(l.length)
	return l
}

func (l *lease) held() bool { return time.Now().Before(l.end) }

// renew makes sure the lease outlasts an attempt, extending it when needed
// and while it is still held.
func (l *lease) renew() bool {
	now := time.Now()
	if !now.Before(l.end) {
		return false
	}
	if l.end.Sub(now) >= l.need {
		return true // fresh enough: spare JetStream a progress message
	}
	if l.m.InProgress() != nil {
		return false
	}
	l.end = now.Add(l.length)
	return true
}

// within returns ctx bounded by the lease, and by limit when positive.
func (l *lease) within(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	end := l.end
	if limit > 0 {
		if e := time.Now().Add(limit); e.Before(end) {
			end = e
		}
	}
	return context.WithDeadline(ctx, end)
}

func (w *Worker) process(ctx context.Context, r *run, m jetstream.Msg) {
	var t task
	if err := json.Unmarshal(m.Data(), &t); err != nil || !profiles.ValidID(t.User) {
		w.o.log.Error("syndication: malformed task dropped", "subject", m.Subject())
		_ = m.Term()
		return
	}
	l := w.lease(m)
	if ctx.Err() != nil {
		w.requeue(ctx, l, "", ctx.Err())
		return
	}
	// A task delivered before may have been sent without its outcome being
	// recorded (a crash, a stop, a lost lease): the state is not trusted then.
	md, err := m.Metadata()
	redelivered := err != nil || md.NumDelivered > 1
	p := r.partner.Load()
	if fresh, ok := w.reg.Get(p.ID); ok {
		p = &fresh // the registry's newest: a contract or state change applies at once
	}
	var d *delivery
	for {
		pctx, cancel := l.within(ctx, 0)
		d, err = w.prepare(pctx, p, t, redelivered)
		cancel()
		if err != nil {
			w.requeue(ctx, l, p.ID, err)
			return
		}
		// prepare may have read a profile changed after p was looked up: if the
		// partner was disabled or its contract changed meanwhile, that change
		// applies to this data too.
		cur, ok := w.reg.Get(p.ID)
		if !ok || (cur.State == p.State && slices.Equal(cur.Fields, p.Fields)) {
			break
		}
		p = &cur
	}
	if d != nil && d.typ == TypeUpserted && p.State != StateActive {
		// New data for a disabled partner waits for the resync at its return.
		// The record is read back first: the resync may already be under way
		// while this process has not yet seen the partner enabled.
		rctx, cancel := l.within(ctx, 0)
		fresh, err := w.reg.load(rctx, p.ID)
		cancel()
		if err != nil {
			w.requeue(ctx, l, p.ID, err)
			return
		}
		if fresh.State != StateActive {
			d = nil
		}
	}
	if d == nil {
		w.skipped.Inc()
		w.settle(l, p.ID, func() error { return m.Ack() })
		return
	}
	if d.typ == TypeUpserted && !d.prev.Holds {
		// A first delivery: record first that the partner may hold data from
		// now on, so an erasure after a crash still reaches it.
		intent := d.prev
		intent.Pending, intent.Holds = d.id, true
		ictx, cancel := l.within(ctx, 0)
		d.prevRev, err = w.led.putState(ictx, p.ID, d.user, intent, d.prevRev)
		cancel()
		if err != nil {
			w.requeue(ctx, l, p.ID, err)
			return
		}
	}
	start := time.Now()
	var res result
	if p.Pull() {
		res = result{class: classOK, attempts: 1}
		fctx, cancel := l.within(ctx, 0)
		if err := w.led.publishFeed(fctx, p.ID, d.user, d.id, d.body); err != nil {
			res = result{class: classLocal, err: err.Error()}
		}
		cancel()
	} else {
		res = w.send(ctx, r, l, d)
	}
	w.finish(ctx, r, l, d, res, time.Since(start))
}

// settle acks or naks the task if the lease is still held; otherwise the
// task belongs to another worker now and is left alone.
func (w *Worker) settle(l *lease, partner string, do func() error) {
	if !l.held() {
		w.lost.Inc()
		w.o.log.Warn("syndication: lease on a task lost; another worker takes it over", "partner", partner)
		return
	}
	_ = do()
}

func (w *Worker) requeue(ctx context.Context, l *lease, partner string, err error) {
	w.reqd.Inc()
	if ctx.Err() != nil {
		w.settle(l, partner, func() error { return l.m.Nak() })
		return
	}
	w.o.log.Warn("syndication: task requeued", "partner", partner, "err", err)
	w.settle(l, partner, func() error { return l.m.NakWithDelay(time.Second) })
}

// isDeletion reports whether a KV stream message is a delete or purge marker.
func isDeletion(h nats.Header) bool {
	if h == nil {
		return false
	}
	op := h.Get("KV-Operation")
	return op == "DEL" || op == "PURGE" || h.Get("Nats-Marker-Reason") != ""
}

// prepare reads what the partner has and the newest profile, and returns
// what to send, or nil when the partner is up to date.
func (w *Worker) prepare(ctx context.Context, p *Partner, t task, redelivered bool) (*delivery, error) {
	prev, prevRev, err := w.led.getState(ctx, p.ID, t.User)
	if err != nil {
		return nil, err
	}
	var prof *profiles.Profile
	version := t.Version
	if c, ok := w.recent.get(t.User, t.Version); ok {
		// Seen on the change feed at or after the task's version: any newer
		// change has a task of its own behind this one.
		prof, version = c.p, c.rev
		return w.build(p, t.User, version, prof, prev, prevRev, redelivered)
	}
	last, err := w.profiles.GetLastMsgForSubject(ctx, profilesSubject+t.User)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		version = max(version, prev.Version)
	case err != nil:
		return nil, fmt.Errorf("syndication: read profile %s: %w", t.User, err)
	case isDeletion(last.Header):
		version = last.Sequence
	default:
		version = last.Sequence
		if prof, err = w.o.decode(ctx, last.Data); err != nil {
			if errors.Is(err, profiles.ErrKeyUnavailable) {
				return nil, fmt.Errorf("syndication: read profile %s: %w", t.User, err) // retried
			}
			w.o.log.Error("syndication: undecodable profile left as the partner has it", "user", t.User, "err", err)
			return nil, nil
		}
		prof.Version = version
	}
	return w.build(p, t.User, version, prof, prev, prevRev, redelivered)
}

// build decides what to send for a profile at version (nil: erased) given
// what the partner has.
func (w *Worker) build(p *Partner, user string, version uint64, prof *profiles.Profile, prev state, prevRev uint64, redelivered bool) (*delivery, error) {
	t := task{User: user}
	if version < prev.Version {
		return nil, nil // the partner has newer
	}
	view := Build(prof, p.Contract(), w.o.publicURL)
	d := &delivery{user: t.User, version: version, prev: prev, prevRev: prevRev}
	known := prev.Pending == "" && !redelivered // else a request may have landed unrecorded
	var data []byte
	if view.Empty() {
		if !prev.Holds {
			return nil, nil
		}
		d.typ = TypeDeleted
		data, _ = json.Marshal(struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		}{t.User, version})
		d.id = messageID(p.ID, t.User, version, TypeDeleted)
	} else {
		d.hash = view.Hash()
		if known && prev.Holds && prev.Hash == d.hash {
			return nil, nil
		}
		d.typ = TypeUpserted
		d.fields = view.Fields()
		data, _ = json.Marshal(view)
		d.id = messageID(p.ID, t.User, version, d.hash)
	}
	d.body, _ = json.Marshal(envelope{Type: d.typ, Timestamp: time.Now().UTC().Truncate(time.Millisecond), Data: data})
	return d, nil
}

// send posts d until it is answered for good, backing off between attempts.
// The body and webhook-id stay the same across attempts; the timestamp and
// signature are made per attempt.
func (w *Worker) send(ctx context.Context, r *run, l *lease, d *delivery) result {
	for attempt := 1; ; attempt++ {
		if res, ok := w.wait(ctx, l, r.limit.reserve()); !ok {
			res.attempts = attempt - 1
			return res
		}
		if !l.renew() {
			return result{class: classLost, attempts: attempt - 1}
		}
		res := w.attempt(ctx, l, r.partner.Load(), d)
		res.attempts = attempt
		switch res.class {
		case classOK:
			w.attemptsOK.Inc()
			return res
		case classRetry:
			w.attemptsRetry.Inc()
		default:
			w.attemptsRefused.Inc()
			return res
		}
		if attempt >= w.o.backoff.Attempts {
			res.class = classExhausted
			return res
		}
		delay := retryDelay(attempt, res.retryAfter, w.o.backoff, time.Now(), rand.Float64())
		if stop, ok := w.wait(ctx, l, delay); !ok {
			stop.attempts, stop.err, stop.status = attempt, res.err, res.status
			return stop
		}
	}
}

// wait sleeps d, renewing the lease meanwhile. It fails when ctx ends (with
// the rest of d to wait, for whoever takes the task over) or the lease is lost.
func (w *Worker) wait(ctx context.Context, l *lease, d time.Duration) (result, bool) {
	beat := w.o.ackWait / 3
	end := time.Now().Add(d)
	for d > 0 {
		step := min(d, beat)
		if !sleep(ctx, step) {
			return result{class: classStopped, retryIn: max(time.Until(end), time.Millisecond)}, false
		}
		d -= step
		if !l.renew() {
			return result{class: classLost}, false
		}
	}
	return result{}, true
}

func (w *Worker) attempt(ctx context.Context, l *lease, p *Partner, d *delivery) result {
	if p.Pull() {
		return result{class: classRefused, err: "the partner became a pull partner"}
	}
	key, err := ParseSecret(p.Secret)
	if err != nil {
		return result{class: classRefused, err: err.Error()}
	}
	if err := checkEndpoint(p.URL, w.o.allowPrivate); err != nil {
		// Registered before the check, or under a looser operator setting.
		return result{class: classRefused, err: err.Error()}
	}
	// A request under way is answered even when the lane stops (a 410
	// disables the partner and stops its lanes): the answer gets recorded.
	actx, cancel := l.within(context.WithoutCancel(ctx), w.o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, p.URL, bytes.NewReader(d.body))
	if err != nil {
		return result{class: classRefused, err: "bad endpoint URL"}
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "adsyn-syndication/1")
	req.Header.Set(HeaderID, d.id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(key, d.id, ts, d.body))
	start := time.Now()
	resp, err := w.client.Do(req)
	w.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return result{class: classStopped, err: "worker stopping"}
		}
		if errors.Is(err, errRefusedAddress) {
			// DNS now names a refused address: no retry makes it right.
			return result{class: classRefused, err: shorten(err.Error())}
		}
		return result{class: classRetry, err: shorten(err.Error())}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return result{class: classify(resp.StatusCode), status: resp.StatusCode, answer: printable(head), retryAfter: resp.Header.Get("Retry-After")}
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// printable keeps the start of an answer fit for the log.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, shorten(string(b)))
}

// finish records the outcome and settles the task.
func (w *Worker) finish(ctx context.Context, r *run, l *lease, d *delivery, res result, took time.Duration) {
	p := r.partner.Load()
	now := time.Now().UTC()
	entry := Delivery{Time: now, Partner: p.ID, User: d.user, WebhookID: d.id, Type: d.typ, Version: d.version,
		Fields: d.fields, Status: res.status, Answer: res.answer, Error: res.err, Attempts: res.attempts, DurationMS: took.Milliseconds()}
	switch res.class {
	case classOK:
		s := state{Version: d.version, Hash: d.hash, Holds: d.typ == TypeUpserted, First: d.prev.First, Last: now, Type: d.typ, ID: d.id}
		if s.Holds && s.First.IsZero() {
			s.First = now
		}
		sctx, cancel := l.within(ctx, 0)
		_, err := w.led.putState(sctx, p.ID, d.user, s, d.prevRev)
		cancel()
		if err != nil {
			// Sent but not recorded: the task runs again and resends with the
			// same webhook-id (at least once), or finds the state moved on.
			// The partner's answer goes on the log all the same.
			entry.Outcome = OutcomeDelivered
			w.logAnswer(entry)
			w.requeue(ctx, l, p.ID, err)
			return
		}
		entry.Outcome = OutcomeDelivered
		if p.Pull() {
			entry.Outcome = OutcomePublished
			w.published.Inc()
		} else {
			w.delivered.Inc()
		}
	case classGone:
		entry.Outcome = OutcomeDisabled
		if err := w.recordGone(ctx, p.ID, d, entry); err != nil {
			w.requeue(ctx, l, p.ID, err)
			return
		}
		w.disabled.Inc()
		w.o.log.Warn("syndication: partner disabled: its endpoint answered 410", "partner", p.ID)
		// The task waits in the queue for the partner's return.
		w.settle(l, p.ID, func() error { return l.m.NakWithDelay(w.o.ackWait) })
		return
	case classRefused, classExhausted:
		reason := res.err
		if res.status != 0 {
			reason = "answered " + strconv.Itoa(res.status)
			if res.status >= 300 && res.status < 400 {
				reason += " (redirects are not followed)"
			}
		}
		if res.class == classExhausted {
			reason = fmt.Sprintf("retries exhausted after %d attempts; last: %s", res.attempts, reason)
		}
		dl := DeadLetter{Time: now, Partner: p.ID, User: d.user, Version: d.version, Type: d.typ, WebhookID: d.id, Reason: reason, Status: res.status, Attempts: res.attempts}
		dctx, cancel := l.within(ctx, 0)
		err := w.led.deadLetter(dctx, dl)
		cancel()
		if err != nil {
			w.requeue(ctx, l, p.ID, err)
			return
		}
		entry.Outcome, entry.Error = OutcomeDeadLetter, reason
		w.dead.Inc()
		w.o.log.Warn("syndication: delivery dead-lettered", "partner", p.ID, "user", d.user, "reason", reason)
	case classLost:
		w.settle(l, p.ID, func() error { return nil })
		return
	default: // stopped, or our side failed
		if res.attempts == 0 && d.typ == TypeUpserted && !d.prev.Holds {
			// Nothing was sent: the partner holds what it held before, not
			// what the first delivery's intent said it might.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if _, err := w.led.putState(uctx, p.ID, d.user, d.prev, d.prevRev); err != nil {
				w.o.log.Warn("syndication: intent of an unsent delivery left", "partner", p.ID, "user", d.user, "err", err)
			}
			cancel()
		}
		if res.retryIn > 0 {
			w.reqd.Inc()
			w.settle(l, p.ID, func() error { return l.m.NakWithDelay(res.retryIn) })
			return
		}
		w.requeue(ctx, l, p.ID, errors.New(res.err))
		return
	}
	w.log(ctx, entry)
	w.settle(l, p.ID, func() error { return l.m.Ack() })
}

// recordGone records a 410 and then disables the partner. The order
// matters: disabling stops the partner's lanes, this one included, and
// cancels ctx, so whatever comes after it may never be written. The writes
// outlive ctx for that reason.
func (w *Worker) recordGone(ctx context.Context, partner string, d *delivery, entry Delivery) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	prev := d.prev
	if prev.Pending == d.id {
		// The intent of this very delivery, left by an earlier try.
		prev.Pending, prev.Holds = "", false
	}
	if d.typ == TypeUpserted && (!d.prev.Holds || d.prev.Pending == d.id) {
		// The intent of a first delivery said the partner may hold data
		// from now on; it refused it, so it holds what it held before.
		if _, err := w.led.putState(rctx, partner, d.user, prev, d.prevRev); err != nil {
			return err
		}
	}
	f, err := w.led.recordAsync(entry)
	if err != nil {
		return err
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		return fmt.Errorf("syndication: delivery log: %w", err)
	case <-rctx.Done():
		return fmt.Errorf("syndication: delivery log: %w", rctx.Err())
	}
	if _, err := w.reg.Gone(rctx, partner); err != nil {
		return err
	}
	return nil
}

// log appends to the delivery log without waiting; drainLog checks the acks.
func (w *Worker) log(_ context.Context, d Delivery) {
	f, err := w.led.recordAsync(d)
	if err != nil {
		w.logErrors.Inc()
		w.o.log.Error("syndication: delivery log", "partner", d.Partner, "err", err)
		return
	}
	w.logq <- f
}

func (w *Worker) drainLog(done chan struct{}) {
	defer close(done)
	for f := range w.logq {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			w.logErrors.Inc()
			w.o.log.Error("syndication: delivery log", "err", err)
		}
	}
}

// recent holds the newest profile each worker saw on the change feed, so
// its lanes rarely read a profile back from NATS. Profiles in it are decoded
// without their contact fields.
type recent struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	rev uint64
	p   *profiles.Profile // nil: erased or deleted
}

const recentMax = 16384

func (c *recent) put(user string, rev uint64, p *profiles.Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.m[user]; ok && cur.rev >= rev {
		return
	}
	if len(c.m) >= recentMax {
		for k := range c.m { // evict an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[user] = cached{rev: rev, p: p}
}

// get returns the cached profile if it is at least at version atLeast.
// A task without a version (a resync) always reads the store.
func (c *recent) get(user string, atLeast uint64) (cached, bool) {
	if atLeast == 0 {
		return cached{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user]
	return e, ok && e.rev >= atLeast
}
