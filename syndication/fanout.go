package syndication

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/profiles"
)

// onChange turns one profile change into one task per partner and acks it
// once every task is stored.
func (w *Worker) onChange(ctx context.Context, c *profiles.Change) {
	switch {
	case c.Deleted:
		w.recent.put(c.User, c.Version, nil)
	case c.Err == nil:
		w.recent.put(c.User, c.Version, c.Profile)
	}
	user := c.User
	partners := w.reg.List()
	futures := make([]jetstream.PubAckFuture, 0, len(partners))
	for i := range partners {
		if !partners[i].delivers() {
			continue // no lane would take it; enabling the partner resyncs
		}
		f, err := enqueue(w.js, &partners[i], user, c.Version)
		if err != nil {
			w.changeErrors.Inc()
			w.o.log.Error("syndication: fan-out", "user", user, "err", err)
			_ = c.Nak(time.Second)
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
			_ = c.Nak(time.Second)
			return
		}
		w.changes.Inc()
		_ = c.Ack()
	}()
}
