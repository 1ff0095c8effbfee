package stats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/stats/tally"
)

// pinHeader carries the id of the client a pinned consumer delivers to.
const pinHeader = "Nats-Pin-Id"

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

// pullBatch bounds the messages one partition's subscription has in flight.
const pullBatch = 256

// PullOptions are a partition puller's: 256 messages and 4 MiB in flight,
// a request that expires after 2 s, heartbeats every 500 ms. The bench's
// ceiling reads with them too: with the client's defaults (a 30 s request,
// no heartbeat) its reads of a grown stream stalled for 10 s and more far
// more often.
func PullOptions() []jetstream.PullMessagesOpt {
	return []jetstream.PullMessagesOpt{jetstream.PullMaxMessagesWithBytesLimit(pullBatch, pullBytes),
		jetstream.PullExpiry(2 * fetchWait), jetstream.PullHeartbeat(pullHeartbeat)}
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
	facts        []tally.Fact
	ownCheck     time.Time
	evaluated    time.Time // last settle check
	mismatches   int       // settle checks in a row whose counts differed
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
			it, err := p.cons.Messages(append(PullOptions(), jetstream.PullPriorityGroup(group))...)
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
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoHeartbeat):
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The iterator has forgotten its request and pulls again.
				a.m.heartbeatMisses.Inc()
				a.cfg.log.Debug("stats pull missed heartbeats, pulling again", "partition", p.n)
			}
			// Idle: are we still the pinned client, does the consumer exist?
			// A pull on a deleted consumer is refused ("no responders"), so
			// missing heartbeats are idle too, and must not skip this check.
			if u.checkOwned(ctx) {
				u.stop()
				gone = true
				continue
			}
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
		u.pin, u.settled, u.snap, u.mismatches = id, false, nil, 0
		p.pin.Store(&id)
		a.setOwned(p.n, true)
		a.m.takeovers.Inc()
	} else if u.settled && md.Sequence.Consumer != u.lastDelivery+1 {
		// A delivery to us went missing: the message may come back after
		// the ack wait, so admit nothing out of order until it does.
		u.settled, u.snap, u.mismatches = false, nil, 0
		a.m.gaps.Inc()
		a.cfg.log.Warn("stats delivery gap", "partition", p.n, "expected", u.lastDelivery+1, "got", md.Sequence.Consumer)
	}
	u.lastDelivery = md.Sequence.Consumer
	if !u.settled && md.Sequence.Consumer == 1 && len(u.hold) == 0 && len(u.extra) == 0 {
		// The consumer's first delivery ever, to us: nothing was delivered
		// before it, so nothing is pending elsewhere, and while deliveries
		// stay contiguous (the gap check above) every one is ours. A new
		// consumer admits at once, without waiting for a settle check; what
		// a former consumer's holder applies meanwhile, the records' applied
		// sequences keep from counting twice.
		u.settled = true
	}
	h := heldMsg{m: m, seq: md.Sequence.Stream, ts: md.Timestamp.UnixMilli(), pending: md.NumPending}
	a.mu.Lock()
	p.held[h.seq]++
	a.mu.Unlock()
	if u.settled {
		u.facts = a.admit(p, h, u.facts)
		a.noteBacklog(p, md.NumPending)
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
	if u.snap == nil || time.Since(u.snap.at) > snapshotAge(u.mismatches) {
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
		if !u.fromLeader(info) {
			// Any member of the consumer's group may answer; one whose copy
			// of the consumer is not running yet (a node just restarted)
			// answers with an empty state: nothing delivered, nothing
			// pending. Counted against that, our held messages settle while
			// others are pending elsewhere, and those are lost when they
			// come back below the mark. Wait for the leader's answer.
			a.cfg.log.Warn("stats settle check: consumer state not from its leader", "partition", p.n,
				"delivered", info.Delivered.Stream, "pending", info.NumAckPending)
			u.snap = &snapshot{pending: -1, at: time.Now()} // matches no count
			return nil
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
		if u.snap.pending >= 0 {
			u.mismatches++
		}
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
	if len(seqs) > 0 {
		// A small backlog can arrive whole before settling.
		a.noteBacklog(p, u.hold[seqs[len(seqs)-1]].pending)
	}
	a.mu.Lock()
	a.cur.dups[p.n] = append(a.cur.dups[p.n], u.extra...)
	a.mu.Unlock()
	clear(u.hold)
	u.extra, u.snap, u.settled, u.mismatches = nil, nil, true, 0
	return nil
}

// snapshotAge is how old a settle snapshot may be after the given number of
// checks in a row that did not match. A mismatch is most often a few
// messages still on their way to us, which the next look finds: the first
// re-reads come fast, so a start or a takeover admits within tens of
// milliseconds; a real wait (another client's messages, until their ack
// wait) backs off to one read a second.
func snapshotAge(mismatches int) time.Duration {
	return min(time.Second, 50*time.Millisecond<<min(mismatches, 5))
}

// fromLeader reports whether info can be the consumer leader's state: it
// names a leader when clustered, and it has delivered every message we
// hold, since all of them were delivered to us.
func (u *puller) fromLeader(info *jetstream.ConsumerInfo) bool {
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return false
	}
	for s := range u.hold {
		if s > info.Delivered.Stream {
			return false
		}
	}
	return true
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
			u.pin, u.settled, u.snap, u.mismatches = "", false, nil, 0
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
	u.pin, u.settled, u.mismatches = "", false, 0
}

// admit counts h into the current batch, in order; a message at or below
// the last admitted one is already in a batch or applied.
func (a *Aggregator) admit(p *partition, h heldMsg, facts []tally.Fact) []tally.Fact {
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
		b.t.Add(&facts[i], p.n, h.seq, nil)
	}
	a.live.Add(facts, tally.FloorDiv(time.Now().Unix(), 60))
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

// decodeFacts appends the counted facts of h's events to facts. Their
// strings point into the message, which is kept until acknowledged.
func decodeFacts(h heldMsg, facts []tally.Fact) ([]tally.Fact, error) {
	if k := subjectKind(h.m.Subject()); !tally.Counted(k) && !tally.Audience(k) {
		return facts, nil
	}
	facts, _, err := tally.DecodeFacts(h.m.Data(), h.ts, facts)
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

// noteBacklog records whether partition p is caught up after a message
// with pending messages behind it, and tells the flusher when every owned
// partition is: counts then show without waiting for the timer.
func (a *Aggregator) noteBacklog(p *partition, pending uint64) {
	p.caughtUp.Store(pending == 0)
	if pending > 0 {
		return
	}
	a.ownMu.Lock()
	all := true
	for q := range a.owned {
		if q < len(a.parts) && !a.parts[q].caughtUp.Load() {
			all = false
			break
		}
	}
	a.ownMu.Unlock()
	if all {
		select {
		case a.idle <- struct{}{}:
		default:
		}
	}
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
