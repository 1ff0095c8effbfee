package syndication

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

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
		states := newLaneStates() // a new consumer numbers its deliveries afresh
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
			w.process(ctx, r, states, m)
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

// process handles one task message: its users, up to the partner's
// per-lane concurrency at once (they are distinct, so each user's
// deliveries stay one at a time), then the message is settled once. State
// writes are sent without waiting and confirmed before the message is
// acknowledged, so every delivery is recorded before its task goes.
func (w *Worker) process(ctx context.Context, r *run, states *laneStates, m jetstream.Msg) {
	// A task delivered before may have been sent without its outcome being
	// recorded (a crash, a stop, a lost lease): the state is not trusted then.
	md, err := m.Metadata()
	redelivered := err != nil || md.NumDelivered > 1
	if err != nil {
		states.delivered(0)
	} else {
		states.delivered(md.Sequence.Consumer)
	}
	var t task
	users, ok := t.decode(m.Data())
	if !ok {
		w.o.log.Error("syndication: malformed task dropped", "subject", m.Subject())
		_ = m.Term()
		return
	}
	l := w.lease(m)
	if ctx.Err() != nil {
		w.requeue(ctx, l, "", ctx.Err())
		return
	}
	outcomes := make([]userOutcome, len(users))
	handle := func(i int) verdict {
		outcomes[i].v = w.handle(ctx, r, l, states, users[i], redelivered, &outcomes[i].writes)
		return outcomes[i].v
	}
	if n := min(len(users), w.o.laneConcurrency(r.partner.Load().Shards)); n <= 1 {
		for i := range users {
			if handle(i).kind != settleAck {
				break // the rest comes again with the message
			}
		}
	} else {
		var next atomic.Int64
		var failed atomic.Bool // once one user fails, the rest comes again with the message
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !failed.Load() {
					i := int(next.Add(1) - 1)
					if i >= len(users) {
						return
					}
					if handle(i).kind != settleAck {
						failed.Store(true)
					}
				}
			}()
		}
		wg.Wait()
	}
	var writes []pendingState
	v := verdict{kind: settleAck}
	for _, o := range outcomes {
		writes = append(writes, o.writes...)
		if o.v.kind > v.kind {
			v = o.v // the strongest; the first in the task's order among equals
		}
	}
	w.conclude(ctx, r, l, states, writes, v)
}

// userOutcome is how one user of a task ended: its verdict, and its
// delivery awaiting confirmation (at most one).
type userOutcome struct {
	v      verdict
	writes []pendingState
}

// handle brings the partner up to date on one user of a task.
func (w *Worker) handle(ctx context.Context, r *run, l *lease, states *laneStates, t taskUser, redelivered bool, writes *[]pendingState) verdict {
	if !l.renew() { // each user of a task starts with time enough for an attempt
		return verdict{kind: settleLost}
	}
	p := r.partner.Load()
	if fresh, ok := w.reg.current(p.ID); ok {
		p = fresh // the registry's newest: a contract or state change applies at once
	}
	var d *delivery
	for {
		var err error
		d, err = w.prepare(ctx, l, p, t, states, redelivered)
		if err != nil {
			return requeueFor(err)
		}
		// prepare may have read a profile changed after p was looked up: if the
		// partner was disabled or its contract changed meanwhile, that change
		// applies to this data too.
		cur, ok := w.reg.current(p.ID)
		if !ok || cur == p || (cur.State == p.State && slices.Equal(cur.Fields, p.Fields)) {
			break
		}
		p = cur
	}
	if d != nil && d.typ == TypeUpserted && p.State != StateActive {
		// New data for a disabled partner waits for the resync at its return.
		// The record is read back first: the resync may already be under way
		// while this process has not yet seen the partner enabled.
		rctx, cancel := l.within(ctx, 0)
		fresh, err := w.reg.load(rctx, p.ID)
		cancel()
		if err != nil {
			return requeueFor(err)
		}
		if fresh.State != StateActive {
			d = nil
		}
	}
	if d == nil {
		w.skipped.Inc()
		return verdict{kind: settleAck}
	}
	if d.typ == TypeUpserted && !d.prev.Holds {
		// A first delivery: record first that the partner may hold data from
		// now on, so an erasure after a crash still reaches it.
		intent := d.prev
		intent.Pending, intent.Holds = d.id, true
		ictx, cancel := l.within(ctx, 0)
		rev, err := w.led.putState(ictx, p.ID, d.user, intent, d.prevRev)
		cancel()
		if err != nil {
			states.forget(d.user)
			return requeueFor(err)
		}
		d.prevRev = rev
		states.put(d.user, intent, d.prevRev)
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
	return w.finish(ctx, r, l, states, d, res, time.Since(start), writes)
}

// verdict is how a task message is settled.
type verdict struct {
	kind  int
	delay time.Duration // settleNak
	err   error         // settleRequeue
}

// Settle kinds, weakest first: the users of a task handled at once settle
// it with the strongest of their verdicts.
const (
	settleAck     = iota // every user handled: the task is done
	settleNak            // again after delay: a back-off cut short
	settleRequeue        // again after a pause: something failed on our side
	settleGone           // again after the ack wait: the partner's endpoint is gone
	settleLost           // the lease ran out: another worker has the task
)

func requeueFor(err error) verdict { return verdict{kind: settleRequeue, err: err} }

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
