package syndication

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/profiles"
)

// onChange hands a profile change to the fan-out; when the fan-out has
// stopped, the change goes back to the feed for another worker.
func (w *Worker) onChange(c *profiles.Change) {
	select {
	case w.changeq <- c:
	case <-w.fanoutDone:
		_ = c.Nak(0)
	}
}

// fanOutLoop turns the changes waiting in the queue into tasks, as many at
// a time as are waiting (up to maxBatch): one task message per partner and
// shard for all of them, so a burst of changes costs a partner a few
// messages, and a lone change is not held back to wait for others. When
// stop closes, what is queued is fanned out and the loop ends.
func (w *Worker) fanOutLoop(ctx context.Context, stop <-chan struct{}) {
	defer close(w.fanoutDone)
	var last time.Time // when the previous batch went out
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var c *profiles.Change
		select {
		case c = <-w.changeq:
		case <-stop:
			select {
			case c = <-w.changeq:
			default:
				return
			}
		}
		batch := []*profiles.Change{c}
	more:
		for len(batch) < maxBatch {
			select {
			case c := <-w.changeq:
				batch = append(batch, c)
			default:
				break more
			}
		}
		if wait := fanOutLinger - time.Since(last); wait > 0 && len(batch) < maxBatch {
			// Changes keep coming: the next moments' join this batch, so a
			// steady stream costs each partner one task per shard per
			// fanOutLinger instead of one per change.
			linger.Reset(wait)
		gather:
			for len(batch) < maxBatch {
				select {
				case c := <-w.changeq:
					batch = append(batch, c)
				case <-linger.C:
					break gather
				case <-stop:
					break gather
				}
			}
			linger.Stop()
		}
		last = time.Now()
		w.fanOut(ctx, batch)
	}
}

// fanOutLinger is how long after a batch the next one gathers changes when
// they keep coming; a change after a quiet spell goes out at once.
const fanOutLinger = 20 * time.Millisecond

// fanOut stores one task per partner and shard for a batch of changes and
// acks the changes once every task is stored.
func (w *Worker) fanOut(ctx context.Context, batch []*profiles.Change) {
	users := make([]taskUser, 0, len(batch))
	at := make(map[string]int, len(batch))
	for _, c := range batch {
		switch {
		case c.Deleted:
			w.recent.put(c.User, c.Version, nil)
		case c.Err == nil:
			w.recent.put(c.User, c.Version, c.Profile)
		}
		if i, ok := at[c.User]; ok {
			users[i].Version = max(users[i].Version, c.Version)
			continue
		}
		at[c.User] = len(users)
		users = append(users, taskUser{User: c.User, Version: c.Version})
	}
	fail := func(err error) {
		w.changeErrors.Add(uint64(len(batch)))
		w.o.log.Error("syndication: fan-out", "changes", len(batch), "err", err)
		for _, c := range batch {
			_ = c.Nak(time.Second)
		}
	}
	partners := w.reg.List()
	var futures []jetstream.PubAckFuture
	for i := range partners {
		p := &partners[i]
		if !p.delivers() {
			continue // no lane would take it; enabling the partner resyncs
		}
		shards := map[int][]taskUser{}
		for _, u := range users {
			s := shardOf(u.User, p.Shards)
			shards[s] = append(shards[s], u)
		}
		for s, us := range shards {
			f, err := enqueueBatch(w.js, p, s, us)
			if err != nil {
				fail(err)
				return
			}
			futures = append(futures, f)
		}
	}
	w.fanout <- struct{}{}
	w.inflight.Add(1)
	go func() {
		defer func() { <-w.fanout; w.inflight.Done() }()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.o.ackWait*3/4)
		defer cancel()
		if err := awaitAll(actx, futures); err != nil {
			fail(err)
			return
		}
		w.changes.Add(uint64(len(batch)))
		for _, c := range batch {
			_ = c.Ack()
		}
	}()
}
