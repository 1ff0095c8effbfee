package syndication

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/profiles"
)

// Worker follows the profile change feed and delivers partner views. Run as
// many as wanted, in one process or several: they share the change consumer
// and each partner's lanes.
type Worker struct {
	js         jetstream.JetStream
	reg        *Registry
	led        *Ledger
	profiles   *profiles.Reader
	client     *http.Client
	o          options
	inflight   sync.WaitGroup
	fanout     chan struct{}         // bounds batches of changes waiting for their tasks to be stored
	changeq    chan *profiles.Change // changes waiting for the fan-out loop
	fanoutDone chan struct{}         // closed when the fan-out loop has ended
	lanes      atomic.Int64
	recent     recent          // newest profiles seen on the change feed
	views      views           // their encoded views, shared by partners
	known      map[string]bool // partners reconcile has seen (its goroutine only)
	purged     map[string]bool // partners not delivering whose tasks were purged (reconcile's)

	changes, changeErrors, logErrors                    *metrics.Counter
	skipped, delivered, published, dead, disabled, reqd *metrics.Counter
	attemptsOK, attemptsRetry, attemptsRefused, lost    *metrics.Counter
	latency                                             *metrics.Histogram
}

// NewWorker prepares a worker; Run starts it.
func NewWorker(ctx context.Context, js jetstream.JetStream, reg *Registry, led *Ledger, opts ...WorkerOption) (*Worker, error) {
	o, err := apply(opts, WorkerOption.worker)
	if err != nil {
		return nil, err
	}
	profs, err := o.profileReader(ctx, js)
	if err != nil {
		return nil, err
	}
	w := &Worker{js: js, reg: reg, led: led, profiles: profs, o: o, fanout: make(chan struct{}, 512),
		changeq: make(chan *profiles.Change, 1024), fanoutDone: make(chan struct{}),
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
	w.latency = m.Histogram("adsyn_synd_request_seconds", "Webhook request duration.", metrics.DeliveryBuckets)
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
	stop := make(chan struct{})
	go w.fanOutLoop(ctx, stop)
	// Changes handed to the fan-out are fanned out and acked or naked.
	stopFanout := sync.OnceFunc(func() {
		close(stop)
		<-w.fanoutDone
		w.inflight.Wait()
	})
	defer stopFanout()
	cc, err := w.profiles.Follow(ctx, profiles.Follower{
		Durable:     ChangeConsumer,
		Description: "syndication workers: profile changes",
		AckWait:     w.o.ackWait,
		MaxPending:  1024,
		Batch:       256,
		OnError:     func(err error) { w.o.log.Warn("syndication: change feed", "err", err) },
	}, w.onChange)
	if err != nil {
		return fmt.Errorf("syndication: consume changes: %w", err)
	}
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
			stopFanout()
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
