package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the connection.
var (
	ErrCredentials  = errors.New("bus: invalid NATS credentials")
	ErrClosed       = errors.New("bus: NATS connection closed for good")
	ErrDisconnected = errors.New("bus: NATS disconnected")
)

// Reconnection backoff: fast at first, since the edge buffers meanwhile,
// then no faster than maxBackoff per pass over the servers, forever.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// backoff is the wait before the attempt-th pass (from 1) over the
// server list: doubling from minBackoff up to maxBackoff, less up to a
// fifth at random so that many processes do not come back in step.
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 16 {
		d = min(maxBackoff, minBackoff<<max(0, attempt-1))
	}
	return d - rand.N(d/5+1)
}

// Conn is a NATS connection with its JetStream context. It reconnects
// forever; subscriptions and consumers resume on the new connection.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream

	log     *slog.Logger
	downAt  atomic.Int64 // unix nanoseconds of the disconnection; 0 while connected
	closing atomic.Bool  // Close was called
	lost    atomic.Bool  // closed, not by Close
	drops   atomic.Uint64
}

// ConnectOption configures Connect.
type ConnectOption func(*connectOptions) error

type connectOptions struct {
	creds    Credentials
	log      *slog.Logger
	embedded *Embedded
}

// InProcess connects to e through memory instead of its socket: no system
// call per write, which on a machine as small as two cores is a share of
// every NATS round trip. Reconnections go to e the same way.
func InProcess(e *Embedded) ConnectOption {
	return func(o *connectOptions) error {
		if e == nil {
			return errors.New("bus: nil embedded server")
		}
		o.embedded = e
		return nil
	}
}

// WithCredentials authenticates with c and checks the server's TLS.
func WithCredentials(c Credentials) ConnectOption {
	return func(o *connectOptions) error {
		o.creds = c
		return nil
	}
}

// WithLogger logs disconnections, reconnections and asynchronous errors.
func WithLogger(l *slog.Logger) ConnectOption {
	return func(o *connectOptions) error {
		if l == nil {
			return errors.New("bus: nil logger")
		}
		o.log = l
		return nil
	}
}

// Connect dials urls (comma-separated) and opens JetStream on the connection.
// It retries the first connection until ctx ends, so processes may start in any
// order, and reconnects forever afterwards. Refused credentials end it at once.
func Connect(ctx context.Context, urls, name string, opts ...ConnectOption) (*Conn, error) {
	if urls == "" {
		return nil, errors.New("bus: no NATS URL")
	}
	o := connectOptions{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	auth, err := o.creds.options()
	if err != nil {
		return nil, err
	}
	c := &Conn{log: o.log}
	nopts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		nats.ReconnectBufSize(16 << 20),
		// A peer that vanished without a word is noticed within half a minute.
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(c.disconnected),
		nats.ReconnectHandler(c.reconnected),
		nats.ClosedHandler(c.closed),
		nats.ErrorHandler(c.asyncError),
	}, auth...)
	if o.embedded != nil {
		nopts = append(nopts, nats.InProcessServer(o.embedded.srv))
	}
	var nc *nats.Conn
	for attempt := 1; ; attempt++ {
		nc, err = nats.Connect(urls, nopts...)
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
			errors.Is(err, nats.ErrNkeysNotSupported) {
			return nil, fmt.Errorf("bus: connect %s: %w: %w", redact(urls), ErrCredentials, err)
		}
		o.log.Warn("nats: cannot connect yet; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: connect %s: %w", redact(urls), err)
		case <-time.After(backoff(attempt)):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	c.NC, c.JS = nc, js
	return c, nil
}

func (c *Conn) disconnected(nc *nats.Conn, err error) {
	if c.closing.Load() {
		return
	}
	c.downAt.CompareAndSwap(0, time.Now().UnixNano())
	c.drops.Add(1)
	c.log.Warn("nats: disconnected; reconnecting", "err", err)
}

func (c *Conn) reconnected(nc *nats.Conn) {
	since := c.downAt.Swap(0)
	var down time.Duration
	if since != 0 {
		down = time.Since(time.Unix(0, since)).Round(time.Millisecond)
	}
	c.log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted(), "down", down.String())
}

func (c *Conn) closed(nc *nats.Conn) {
	if c.closing.Load() {
		return
	}
	c.lost.Store(true)
	c.downAt.CompareAndSwap(0, time.Now().UnixNano())
	c.log.Error("nats: connection closed for good; the process must restart", "err", nc.LastError())
}

// asyncError logs what the server refused outside a request: a permission
// violation, a slow consumer. The subject may hold an id, so it stays out.
func (c *Conn) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	c.log.Warn("nats: asynchronous error", "err", err)
}

// Connected reports whether the connection is up now.
func (c *Conn) Connected() bool { return c.NC != nil && c.NC.IsConnected() }

// Disconnections counts the connection losses since Connect.
func (c *Conn) Disconnections() uint64 { return c.drops.Load() }

// Down returns how long the connection has been down, 0 while it is up.
func (c *Conn) Down() time.Duration {
	if since := c.downAt.Load(); since != 0 && !c.Connected() {
		return time.Since(time.Unix(0, since))
	}
	return 0
}

// Health returns nil while the process can use NATS: ErrClosed once the
// connection is gone for good, ErrDisconnected once it has been down longer
// than bound.
func (c *Conn) Health(bound time.Duration) error {
	if c.lost.Load() || (c.NC != nil && c.NC.IsClosed() && !c.closing.Load()) {
		return ErrClosed
	}
	if d := c.Down(); d > bound {
		return fmt.Errorf("%w for %s (more than %s)", ErrDisconnected, d.Round(time.Second), bound)
	}
	return nil
}

// Close drains and closes the connection.
func (c *Conn) Close() {
	c.closing.Store(true)
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return
	}
	for c.NC.IsDraining() {
		time.Sleep(10 * time.Millisecond)
	}
}

// redact keeps user and password of URLs out of errors and logs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		s := strings.Index(u, "://")
		if at := strings.LastIndexByte(u, '@'); s >= 0 && at > s {
			parts[i] = u[:s+3] + "[redacted]" + u[at:]
		}
	}
	return strings.Join(parts, ",")
}
