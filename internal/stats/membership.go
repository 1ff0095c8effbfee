package stats

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ownership: an aggregator pulls a partition it does not own only while it
// owns fewer than its fair share, and releases the excess.

func (a *Aggregator) share() int {
	m := int(max(1, a.members.Load()))
	return (a.cfg.partitions + m - 1) / m
}

func (a *Aggregator) setOwned(p int, own bool) {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	if own {
		a.owned[p] = true
	} else {
		delete(a.owned, p)
	}
}

func (a *Aggregator) isOwned(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return a.owned[p]
}

func (a *Aggregator) mayPull(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return a.owned[p] || len(a.owned) < a.share()
}

// excess reports whether p is among the partitions owned beyond the share.
func (a *Aggregator) excess(p int) bool {
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	s := a.share()
	if !a.owned[p] || len(a.owned) <= s {
		return false
	}
	n := 0
	for q := range a.owned {
		if q < p {
			n++
		}
	}
	return n >= s
}

// unpin lets the server pin another client to p, if we are the pinned one.
func (a *Aggregator) unpin(ctx context.Context, p *partition) {
	mine := p.pin.Load()
	if mine == nil || *mine == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == group && g.PinnedClientID == *mine {
			if err := a.stream.UnpinConsumer(ctx, p.name, group); err != nil {
				a.cfg.log.Warn("stats unpin failed", "partition", p.n, "err", err)
			}
		}
	}
}

// Membership: each aggregator puts agg.<consumer>.m.<instance> every
// heartbeat; members are those whose last put is recent by the server's
// clock, compared with the newest put seen.

const heartbeat = 2 * time.Second

func (a *Aggregator) memberKey() string {
	return "agg." + a.cfg.consumer + ".m." + a.id
}

func (a *Aggregator) membership(ctx context.Context) {
	defer a.side.Done()
	var (
		mu   sync.Mutex
		seen = map[string]time.Time{}
	)
	go func() {
		for ctx.Err() == nil {
			w, err := a.kv.Watch(ctx, "agg."+a.cfg.consumer+".m.*")
			if err != nil {
				a.cfg.log.Warn("stats membership watch failed", "err", err)
				sleep(ctx, heartbeat)
				continue
			}
			for e := range w.Updates() {
				if e == nil {
					continue
				}
				mu.Lock()
				if e.Operation() == jetstream.KeyValuePut {
					seen[e.Key()] = e.Created()
				} else {
					delete(seen, e.Key())
				}
				mu.Unlock()
			}
			_ = w.Stop()
		}
	}()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, heartbeat)
		if _, err := a.kv.Put(pctx, a.memberKey(), strconv.AppendInt(nil, time.Now().UnixMilli(), 10)); err != nil && ctx.Err() == nil {
			a.cfg.log.Warn("stats heartbeat failed", "err", err)
		}
		cancel()
		mu.Lock()
		var newest time.Time
		for _, t := range seen {
			if t.After(newest) {
				newest = t
			}
		}
		n := int64(0)
		for k, t := range seen {
			switch age := newest.Sub(t); {
			case age <= 5*heartbeat:
				n++
			case age > time.Hour:
				delete(seen, k)
				go a.kv.Delete(context.WithoutCancel(ctx), k) //nolint:errcheck // stale member of a crashed process; retried next time
			}
		}
		mu.Unlock()
		a.members.Store(max(1, n))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
