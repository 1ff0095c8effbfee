package syndication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/keyring"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/profiles"
)

// Backoff is the retry schedule of a failing delivery: the n-th retry waits
// min(Max, Base·2^(n-1)), jittered down by up to half; after Attempts
// attempts the delivery goes to the dead-letter stream.
type Backoff struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

// DefaultBackoff retries for about 17 minutes (10 attempts) before giving up.
var DefaultBackoff = Backoff{Base: time.Second, Max: 10 * time.Minute, Attempts: 10}

// Each constructor takes its own option type, so an option it would not
// read does not compile (as in adserver, after nats.go's jetstream).
type (
	// RegistryOption configures NewRegistry.
	RegistryOption interface{ registry(*options) error }
	// WorkerOption configures NewWorker.
	WorkerOption interface{ worker(*options) error }
)

// SharedOption is read by NewRegistry and NewWorker alike: a registry and
// the workers over it should agree on the lanes' timing, private endpoints
// and the keyring.
type SharedOption func(*options) error

type (
	registryOption func(*options) error
	workerOption   func(*options) error
)

func (o SharedOption) registry(c *options) error   { return o(c) }
func (o SharedOption) worker(c *options) error     { return o(c) }
func (o registryOption) registry(c *options) error { return o(c) }
func (o workerOption) worker(c *options) error     { return o(c) }

type options struct {
	log       *slog.Logger
	metrics   *metrics.Registry
	timeout   time.Duration
	ackWait   time.Duration
	backoff   Backoff
	publicURL string
	shards    int
	replicas  int
	// concurrency bounds the requests a worker has in flight to one
	// partner (WithPartnerConcurrency).
	concurrency int
	profiles    *profiles.Reader
	ring        *keyring.Keyring // seals partners' webhook secrets at rest
	// allowPrivate lets partner endpoints be loopback or private addresses;
	// link-local and metadata addresses stay refused.
	allowPrivate bool
}

func defaults() options {
	return options{timeout: 15 * time.Second, ackWait: 10 * time.Second, backoff: DefaultBackoff, shards: 8, replicas: 1, concurrency: 64}
}

// apply applies opts with set, the option type's own method.
func apply[O any](opts []O, set func(O, *options) error) (options, error) {
	o := defaults()
	for _, opt := range opts {
		if err := set(opt, &o); err != nil {
			return o, err
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.metrics == nil {
		o.metrics = metrics.NewRegistry()
	}
	return o, nil
}

// WithProfiles sets the profile reader the registry and the worker read
// users, their change feed and their newest profiles through; without it,
// each opens one with the keyring (WithKeyring).
func WithProfiles(r *profiles.Reader) SharedOption {
	return func(o *options) error {
		if r == nil {
			return errors.New("syndication: nil profile reader")
		}
		o.profiles = r
		return nil
	}
}

// profileReader returns the reader WithProfiles set, or opens one.
func (o *options) profileReader(ctx context.Context, js jetstream.JetStream) (*profiles.Reader, error) {
	if o.profiles != nil {
		return o.profiles, nil
	}
	if o.ring == nil {
		return nil, errors.New("syndication: profiles are read with WithProfiles or the keyring (WithKeyring)")
	}
	r, err := profiles.NewReader(ctx, js, o.ring)
	if err != nil {
		return nil, fmt.Errorf("syndication: %w", err)
	}
	return r, nil
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) SharedOption {
	return func(o *options) error {
		if l == nil {
			return errors.New("syndication: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithMetrics registers series on r.
func WithMetrics(r *metrics.Registry) WorkerOption {
	return workerOption(func(o *options) error {
		if r == nil {
			return errors.New("syndication: nil metrics registry")
		}
		o.metrics = r
		return nil
	})
}

// WithTimeout bounds one delivery attempt (default 15 s).
func WithTimeout(d time.Duration) SharedOption {
	return func(o *options) error {
		if d <= 0 || d > 5*time.Minute {
			return fmt.Errorf("syndication: timeout %v out of (0, 5m]", d)
		}
		o.timeout = d
		return nil
	}
}

// WithTakeover sets how long the work of a crashed worker waits before
// another worker takes it over (default 10 s): the change consumer's ack
// wait, and a lane's beyond the attempt timeout. Workers signal progress
// well within it while they work.
func WithTakeover(d time.Duration) SharedOption {
	return func(o *options) error {
		if d < 100*time.Millisecond || d > 5*time.Minute {
			return fmt.Errorf("syndication: takeover %v out of [100ms, 5m]", d)
		}
		o.ackWait = d
		return nil
	}
}

// laneAckWait covers one attempt plus the takeover margin; progress is
// signalled before each attempt and during back-off.
func (o *options) laneAckWait() time.Duration { return o.timeout + o.ackWait }

// WithBackoff sets the retry schedule.
func WithBackoff(b Backoff) WorkerOption {
	return workerOption(func(o *options) error {
		if b.Base <= 0 || b.Max < b.Base || b.Attempts < 1 || b.Attempts > 100 {
			return fmt.Errorf("syndication: backoff %+v: need 0 < Base <= Max and 1-100 attempts", b)
		}
		o.backoff = b
		return nil
	})
}

// WithPublicURL sets the API's public base URL, which partner views use to
// point at public photos ("https://api.example.com").
func WithPublicURL(base string) WorkerOption {
	return workerOption(func(o *options) error {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("syndication: public URL %q must be http(s)://host", base)
		}
		o.publicURL = strings.TrimRight(base, "/")
		return nil
	})
}

// WithPartnerConcurrency bounds the requests one worker has in flight to a
// partner (default 64): each of the partner's lanes delivers up to
// n/shards distinct users of a task at once, and at least one. The partner's
// rate limit applies on top.
func WithPartnerConcurrency(n int) WorkerOption {
	return workerOption(func(o *options) error {
		if n < 1 || n > 4096 {
			return fmt.Errorf("syndication: partner concurrency %d out of 1-4096", n)
		}
		o.concurrency = n
		return nil
	})
}

// laneConcurrency is how many users of a task a lane of a partner with
// shards lanes delivers at once.
func (o *options) laneConcurrency(shards int) int { return max(1, o.concurrency/max(shards, 1)) }

// WithShards sets how many ordered lanes a new partner gets (default 8):
// its delivery concurrency. A partner keeps the count it was created with.
func WithShards(n int) RegistryOption {
	return registryOption(func(o *options) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("syndication: shards %d out of 1-256", n)
		}
		o.shards = n
		return nil
	})
}

// WithReplicas sets the replica count of the streams this package creates.
func WithReplicas(n int) RegistryOption {
	return registryOption(func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("syndication: replicas %d out of 1-5", n)
		}
		o.replicas = n
		return nil
	})
}

// WithPrivatePartners lets partner endpoints be on loopback, private and
// reserved addresses (a deliverer on the operator's own network, the demo
// partner). Link-local and cloud metadata addresses stay refused.
func WithPrivatePartners(allow bool) SharedOption {
	return func(o *options) error {
		o.allowPrivate = allow
		return nil
	}
}
