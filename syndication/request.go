package syndication

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/adsyn/adsyn/syndication/webhook"
)

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
	keys, err := p.signingKeys(time.Now())
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
	// Canonical keys set directly: Header.Set would canonicalise the
	// webhook names again on every request.
	req.Header = http.Header{
		"Content-Type":  jsonType,
		"User-Agent":    userAgent,
		headerID:        {d.id},
		headerTimestamp: {strconv.FormatInt(ts, 10)},
		headerSignature: {webhook.SignAll(keys, d.id, ts, d.body)},
	}
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

var (
	jsonType        = []string{"application/json"}
	userAgent       = []string{"adsyn-syndication/1"}
	headerID        = textproto.CanonicalMIMEHeaderKey(webhook.HeaderID)
	headerTimestamp = textproto.CanonicalMIMEHeaderKey(webhook.HeaderTimestamp)
	headerSignature = textproto.CanonicalMIMEHeaderKey(webhook.HeaderSignature)
)

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
