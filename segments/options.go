package segments

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Each constructor takes its own option type, so an option it would not
// read does not compile (as in adserver, after nats.go's jetstream). An
// option that several constructors read has a type that satisfies each.
type (
	// BuilderOption configures NewBuilder.
	BuilderOption interface{ builder(*options) error }
	// StoreOption configures NewKVStore.
	StoreOption interface{ store(*options) error }
	// HandlerOption configures NewHandler.
	HandlerOption interface{ handler(*options) error }
	// OptOutOption configures OptOut.
	OptOutOption interface{ optOut(*options) error }
)

// The options read by more than one constructor.
type (
	// LogOption is read by every constructor.
	LogOption func(*options) error
	// MetricsOption is read by NewBuilder, NewKVStore and OptOut.
	MetricsOption func(*options) error
	// PolicyOption is read by NewBuilder and NewHandler.
	PolicyOption func(*options) error
	// TimeoutOption is read by NewKVStore and OptOut.
	TimeoutOption func(*options) error
)

// Options of one constructor only.
type (
	builderOption func(*options) error
	storeOption   func(*options) error
	handlerOption func(*options) error
)

func (o LogOption) builder(c *options) error     { return o(c) }
func (o LogOption) store(c *options) error       { return o(c) }
func (o LogOption) handler(c *options) error     { return o(c) }
func (o LogOption) optOut(c *options) error      { return o(c) }
func (o MetricsOption) builder(c *options) error { return o(c) }
func (o MetricsOption) store(c *options) error   { return o(c) }
func (o MetricsOption) optOut(c *options) error  { return o(c) }
func (o PolicyOption) builder(c *options) error  { return o(c) }
func (o PolicyOption) handler(c *options) error  { return o(c) }
func (o TimeoutOption) store(c *options) error   { return o(c) }
func (o TimeoutOption) optOut(c *options) error  { return o(c) }
func (o builderOption) builder(c *options) error { return o(c) }
func (o storeOption) store(c *options) error     { return o(c) }
func (o handlerOption) handler(c *options) error { return o(c) }

type options struct {
	shared *Shared // where PUT /v1/taxonomy stores the taxonomy; nil: in memory
	log    *slog.Logger
	reg    *metrics.Registry
	policy Policy

	// Builder
	partitions  int
	owned       []int
	window      time.Duration
	flushEvents int
	maxInflight int
	consumer    string
	startSeq    uint64
	recordTTL   time.Duration
	ackWait     time.Duration
	pull        int
	maxCached   int

	// KVStore
	cacheMaxCost int64
	warm         bool
	cacheTTL     time.Duration
	negativeTTL  time.Duration
	timeout      time.Duration
}

func defaultOptions() options {
	return options{
		policy:       DefaultPolicy(),
		partitions:   event.DefaultPartitions,
		window:       20 * time.Millisecond,
		flushEvents:  32768,
		maxInflight:  4096,
		consumer:     "segments",
		ackWait:      30 * time.Second,
		pull:         64,
		maxCached:    1 << 20,
		cacheMaxCost: 64 << 20,
		cacheTTL:     5 * time.Minute,
		negativeTTL:  30 * time.Second,
		timeout:      2 * time.Second,
	}
}

// buildOptions applies opts with apply, the option type's own method.
func buildOptions[O any](opts []O, apply func(O, *options) error) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if any(opt) == nil {
			continue
		}
		if err := apply(opt, &o); err != nil {
			return o, err
		}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.reg == nil {
		o.reg = metrics.NewRegistry()
	}
	if o.owned == nil {
		for p := range o.partitions {
			o.owned = append(o.owned, p)
		}
	}
	return o, nil
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) LogOption {
	return func(o *options) error { o.log = l; return nil }
}

// WithMetrics sets the registry metrics go to (default: a private one).
func WithMetrics(r *metrics.Registry) MetricsOption {
	return func(o *options) error { o.reg = r; return nil }
}

// WithPolicy sets the decay half-life and the record bounds (Builder, Handler).
func WithPolicy(p Policy) PolicyOption {
	return func(o *options) error {
		if err := p.Validate(); err != nil {
			return err
		}
		o.policy = p
		return nil
	}
}

// WithHalfLife sets the score half-life of the policy (Builder, Handler).
func WithHalfLife(d time.Duration) PolicyOption {
	return func(o *options) error {
		p := o.policy
		p.HalfLife = d
		if err := p.Validate(); err != nil {
			return err
		}
		o.policy = p
		return nil
	}
}

// WithPartitions says how many partitions events are split into (as the edge
// publishes them) and which of them this builder owns; none means all.
// Builders sharing a partition share its durable consumer.
func WithPartitions(total int, owned ...int) BuilderOption {
	return builderOption(func(o *options) error {
		if total < 1 || total > 1024 {
			return fmt.Errorf("segments: partitions %d: must be 1-1024", total)
		}
		seen := map[int]bool{}
		for _, p := range owned {
			if p < 0 || p >= total || seen[p] {
				return fmt.Errorf("segments: owned partition %d: must be distinct, 0-%d", p, total-1)
			}
			seen[p] = true
		}
		o.partitions, o.owned = total, nil
		if len(owned) > 0 {
			o.owned = append([]int(nil), owned...)
		}
		return nil
	})
}

// WithWindow sets how long a builder coalesces a partition's events before
// writing (default 20ms: the edge's publisher sends a page load's batches,
// one per kind, on the same flush tick or the next, 10ms later), and
// the event count that writes sooner (default 32768; behind a backlog the
// batch grows to it).
func WithWindow(d time.Duration, maxEvents int) BuilderOption {
	return builderOption(func(o *options) error {
		if d < time.Millisecond || d > 10*time.Second {
			return errors.New("segments: window must be 1ms-10s")
		}
		if maxEvents < 1 || maxEvents > 1<<20 {
			return errors.New("segments: window events must be 1-1048576")
		}
		o.window, o.flushEvents = d, maxEvents
		return nil
	})
}

// WithMaxInflight bounds the record writes awaiting acknowledgement across a
// builder's partitions (default 4096).
func WithMaxInflight(n int) BuilderOption {
	return builderOption(func(o *options) error {
		if n < 1 || n > 1<<16 {
			return errors.New("segments: max inflight must be 1-65536")
		}
		o.maxInflight = n
		return nil
	})
}

var consumerRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,48}$`)

// WithConsumer sets the prefix of the durable consumer names (default
// "segments": consumers segments_p0 … segments_p15).
func WithConsumer(prefix string) BuilderOption {
	return builderOption(func(o *options) error {
		if !consumerRE.MatchString(prefix) {
			return fmt.Errorf("segments: consumer prefix %q: 1-48 of A-Z a-z 0-9 _ -", prefix)
		}
		o.consumer = prefix
		return nil
	})
}

// WithStartSequence makes new consumers start at this stream sequence
// instead of the first event kept (existing consumers keep their place).
func WithStartSequence(seq uint64) BuilderOption {
	return builderOption(func(o *options) error { o.startSeq = seq; return nil })
}

// WithTakeover sets how long the events a crashed builder held wait before
// another builder takes them over: the consumers' ack wait (default 30 s).
// Policy.MaxApplied must cover the messages a busy visitor gets within it.
func WithTakeover(d time.Duration) BuilderOption {
	return builderOption(func(o *options) error {
		if d < time.Second || d > 5*time.Minute {
			return fmt.Errorf("segments: takeover %v out of [1s, 5m]", d)
		}
		o.ackWait = d
		return nil
	})
}

// WithRecordTTL gives each record write its own expiry (the Nats-TTL header)
// instead of the bucket's; 0 (the default) leaves the bucket's TTL in force.
func WithRecordTTL(d time.Duration) BuilderOption {
	return builderOption(func(o *options) error {
		if d != 0 && d < time.Second {
			return errors.New("segments: record TTL must be 0 or at least 1s")
		}
		o.recordTTL = d
		return nil
	})
}

// WithCache sets the KVStore cache: its bound in bytes (default 64 MiB), the
// time a record stays cached (5m) and the time an absent one does (30s).
// The KV watch keeps cached entries current well within these.
func WithCache(maxCost int64, ttl, negativeTTL time.Duration) StoreOption {
	return storeOption(func(o *options) error {
		if maxCost < 1<<16 {
			return errors.New("segments: cache must hold at least 64 KiB")
		}
		if ttl < time.Second || negativeTTL < time.Second {
			return errors.New("segments: cache TTLs must be at least 1s")
		}
		o.cacheMaxCost, o.cacheTTL, o.negativeTTL = maxCost, ttl, negativeTTL
		return nil
	})
}

// WithSharedTaxonomy makes PUT /v1/taxonomy store the taxonomy in NATS,
// whence every process puts it in force and a restart keeps it.
func WithSharedTaxonomy(s *Shared) HandlerOption {
	return handlerOption(func(o *options) error { o.shared = s; return nil })
}

// WithWarmCache makes the store's watch fill the cache with every record
// written, not only refresh the ones cached: an edge then serves a visitor
// from memory right after the builder has seen them, at the cost of
// decoding every write. For edges.
func WithWarmCache(on bool) StoreOption {
	return storeOption(func(o *options) error { o.warm = on; return nil })
}

// WithTimeout sets the deadline of KV reads and deletes whose context has
// none (default 2s).
func WithTimeout(d time.Duration) TimeoutOption {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("segments: timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}
