package syndication

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lease is a lane's hold on its task: JetStream's ack wait, renewed by
// progress signals. Its end is reckoned a margin before the server's, and
// every side effect (request, state write, ack) runs under a deadline inside
// it, so a worker that stalls past its lease cannot act after another worker
// has taken the task over: deliveries of a (partner, user) never overlap.
// The users of a task share it, so its methods lock.
type lease struct {
	m      jetstream.Msg
	mu     sync.Mutex
	end    time.Time
	length time.Duration // ack wait minus the margin
	need   time.Duration // renew when less than this is left
}

func (w *Worker) lease(m jetstream.Msg) *lease {
	l := &lease{m: m, length: w.o.laneAckWait() - w.o.ackWait/2, need: w.o.timeout + w.o.ackWait/4}
	l.end = time.Now().Add(l.length)
	return l
}

func (l *lease) held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.end)
}

// renew makes sure the lease outlasts an attempt, extending it when needed
// and while it is still held.
func (l *lease) renew() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	l.mu.Lock()
	end := l.end
	l.mu.Unlock()
	if limit > 0 {
		if e := time.Now().Add(limit); e.Before(end) {
			end = e
		}
	}
	return context.WithDeadline(ctx, end)
}
