package syndication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// finish records the outcome of one user's delivery and says how the task
// is to be settled. A delivered one's state, which carries its log entry,
// is sent at once, so that a process killed later in the task leaves its
// answer logged; conclude confirms it before the task is acknowledged.
func (w *Worker) finish(ctx context.Context, r *run, l *lease, states *laneStates, d *delivery, res result, took time.Duration, writes *[]pendingState) verdict {
	p := r.partner.Load()
	now := time.Now().UTC()
	entry := Delivery{Time: now, Partner: p.ID, User: d.user, WebhookID: d.id, Type: d.typ, Version: d.version,
		Fields: d.fields, Status: res.status, Answer: res.answer, Error: res.err, Attempts: res.attempts, DurationMS: took.Milliseconds(),
		First: d.typ == TypeUpserted && !d.prev.Holds}
	if !d.changed.IsZero() {
		entry.LagMS = max(now.Sub(d.changed).Milliseconds(), 0)
	}
	switch res.class {
	case classOK:
		s := state{Version: d.version, Hash: d.hash, Holds: d.typ == TypeUpserted, First: d.prev.First, Last: now, Type: d.typ, ID: d.id}
		if s.Holds && s.First.IsZero() {
			s.First = now
		}
		entry.Outcome = OutcomeDelivered
		if p.Pull() {
			entry.Outcome = OutcomePublished
		}
		// Until it is confirmed, the lane does not know the record.
		states.forget(d.user)
		pw := pendingState{user: d.user, s: s, entry: entry}
		s.Entry = &entry
		pw.written, pw.err = w.led.putStateAsync(p.ID, d.user, s, d.prevRev)
		*writes = append(*writes, pw)
		return verdict{kind: settleAck}
	case classGone:
		states.forget(d.user)
		entry.Outcome = OutcomeDisabled
		if err := w.recordGone(ctx, p.ID, d, entry); err != nil {
			return requeueFor(err)
		}
		w.disabled.Inc()
		w.o.log.Warn("syndication: partner disabled: its endpoint answered 410", "partner", p.ID)
		// The task waits in the queue for the partner's return.
		return verdict{kind: settleGone}
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
			return requeueFor(err)
		}
		entry.Outcome, entry.Error = OutcomeDeadLetter, reason
		w.dead.Inc()
		w.o.log.Warn("syndication: delivery dead-lettered", "partner", p.ID, "user", d.user, "reason", reason)
		states.forget(d.user)                      // the log entry is a revision of its own
		if err := w.logAnswer(entry); err != nil { // on the log before the task is acknowledged
			return requeueFor(err)
		}
		return verdict{kind: settleAck}
	case classLost:
		return verdict{kind: settleLost}
	default: // stopped, or our side failed
		if res.attempts == 0 && d.typ == TypeUpserted && !d.prev.Holds {
			// Nothing was sent: the partner holds what it held before, not
			// what the first delivery's intent said it might.
			states.forget(d.user)
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if _, err := w.led.putState(uctx, p.ID, d.user, d.prev, d.prevRev); err != nil {
				w.o.log.Warn("syndication: intent of an unsent delivery left", "partner", p.ID, "user", d.user, "err", err)
			}
			cancel()
		}
		if res.retryIn > 0 {
			return verdict{kind: settleNak, delay: res.retryIn}
		}
		return requeueFor(errors.New(res.err))
	}
}

// pendingState is a delivery whose state write awaits its confirmation.
type pendingState struct {
	user    string
	s       state
	written jetstream.PubAckFuture // the state's write, with entry
	err     error                  // the write could not be sent
	entry   Delivery
}

// conclude confirms the task's deliveries and settles the task: each new
// state with its answer on it (one write, sent by finish), then the
// acknowledgement. A process killed at any point leaves no acknowledged task
// unrecorded: a task whose state was not written runs again, and its
// resend's answer is logged. A state write that fails still logs its
// answer, on the state as it is, and the task runs again.
func (w *Worker) conclude(ctx context.Context, r *run, l *lease, states *laneStates, writes []pendingState, v verdict) {
	partner := r.partner.Load().ID
	// Writes already sent are confirmed even when the worker is stopping;
	// the lease bounds the wait.
	wctx, cancel := l.within(context.WithoutCancel(ctx), 0)
	defer cancel()
	logDown := false // a log write gave up: NATS is away, the others would too
	fail := func(pw *pendingState, err error) {
		// Sent but not recorded: the answer goes on the log by itself, and
		// the task runs again and resends with the same webhook-id (at
		// least once), or finds the state moved on.
		states.forget(pw.user)
		if logDown {
			w.logErrors.Inc()
		} else if w.logAnswer(pw.entry) != nil { // waits, retrying; counted if it fails
			logDown = true
		}
		if v.kind == settleAck {
			v = requeueFor(fmt.Errorf("syndication: write state %s/%s: %w", partner, pw.user, err))
		}
	}
	for i := range writes {
		pw := &writes[i]
		if pw.err != nil {
			fail(pw, pw.err)
			continue
		}
		var err error
		select {
		case ack := <-pw.written.Ok():
			states.put(pw.user, pw.s, ack.Sequence)
		case err = <-pw.written.Err():
		case <-wctx.Done():
			err = wctx.Err()
		}
		if err != nil {
			fail(pw, err)
			continue
		}
		if pw.entry.Outcome == OutcomePublished {
			w.published.Inc()
		} else {
			w.delivered.Inc()
		}
	}
	switch v.kind {
	case settleAck:
		w.settle(l, partner, func() error { return l.m.Ack() })
	case settleNak:
		w.reqd.Inc()
		w.settle(l, partner, func() error { return l.m.NakWithDelay(v.delay) })
	case settleGone:
		w.settle(l, partner, func() error { return l.m.NakWithDelay(w.o.ackWait) })
	case settleRequeue:
		w.requeue(ctx, l, partner, v.err)
	default: // lost: the task is another worker's now
		w.settle(l, partner, func() error { return nil })
	}
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
	var err error
	if d.typ == TypeUpserted && (!d.prev.Holds || d.prev.Pending == d.id) {
		// The intent of a first delivery said the partner may hold data
		// from now on; it refused it, so it holds what it held before.
		prev.Entry = &entry
		_, err = w.led.putState(rctx, partner, d.user, prev, d.prevRev)
	} else {
		_, err = w.led.record(rctx, entry)
	}
	if err != nil {
		return err
	}
	if _, err := w.reg.Gone(rctx, partner); err != nil {
		return err
	}
	return nil
}

// logAnswer writes a delivery to the log, leaving the state as it is, and
// waits for it, retrying while NATS is away (up to half a minute). On
// failure the caller must not record the delivery as done: its task runs
// again, and logs again.
func (w *Worker) logAnswer(d Delivery) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := w.led.record(ctx, d)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			w.logErrors.Inc()
			w.o.log.Warn("syndication: delivery log", "partner", d.Partner, "user", d.User, "err", err)
			return fmt.Errorf("syndication: delivery log: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
