package syndication

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// class is what an answer means for the delivery.
type class int

const (
	classOK        class = iota // delivered (2xx) or published to the feed
	classRetry                  // timeout, connection error, 408, 429, 5xx: back off and retry
	classGone                   // 410: disable the partner
	classRefused                // 3xx (redirects are not followed) and other 4xx: dead letter
	classExhausted              // retries used up: dead letter
	classStopped                // the worker is stopping: requeue
	classLocal                  // our side failed (NATS): requeue after a pause
	classLost                   // the lease on the task ran out: another worker has it
)

// classify maps an HTTP status to its class, per the Standard Webhooks advice.
func classify(status int) class {
	switch {
	case status >= 200 && status < 300:
		return classOK
	case status == http.StatusGone:
		return classGone
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return classRetry
	case status >= 300 && status < 500:
		return classRefused
	default:
		return classRetry
	}
}

// maxRetryAfter caps how long a partner's Retry-After may hold its lane.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return min(time.Duration(n)*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// retryDelay is the wait before retry number attempt (1-based): exponential
// from b.Base, capped at b.Max, with jitter in [0, 1) taking off up to half;
// a Retry-After from the partner is a floor.
func retryDelay(attempt int, retryAfter string, b Backoff, now time.Time, jitter float64) time.Duration {
	d := b.Max
	if attempt < 40 {
		d = min(b.Base<<(attempt-1), b.Max)
	}
	d = d/2 + time.Duration(jitter*float64(d/2))
	if ra, ok := parseRetryAfter(retryAfter, now); ok {
		d = max(d, ra)
	}
	return d
}

// limiter is a token bucket of rate requests per second (0: unlimited),
// shared by the lanes of one partner in one worker.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func (l *limiter) set(rate float64) {
	l.mu.Lock()
	l.rate = rate
	l.mu.Unlock()
}

// reserve takes a token and returns how long to wait before using it.
func (l *limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return 0
	}
	now := time.Now()
	if l.last.IsZero() {
		l.tokens, l.last = max(1, l.rate), now
	}
	l.tokens = min(max(1, l.rate), l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
