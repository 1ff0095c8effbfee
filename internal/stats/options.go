package stats

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/internal/privacy"
)

var (
	ErrBadOption = errors.New("stats: invalid option")
	ErrBadID     = errors.New("stats: invalid id")
	ErrStarted   = errors.New("stats: aggregator already started")
)

// CampaignInfo is a campaign as the dashboard's table lists it.
type CampaignInfo struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// SiteInfo is a site as the dashboard's table lists it.
type SiteInfo struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Each constructor takes its own option type, so an option it would not
// read does not compile (as nats.go's jetstream does with PullConsumeOpt
// and its siblings); the options both read have a type of their own that
// satisfies each.
type (
	// AggregatorOption configures New.
	AggregatorOption interface{ aggregator(*config) error }
	// HandlerOption configures NewHandler.
	HandlerOption interface{ handler(*config) error }
	// SharedOption (logger, metrics, partitions, clock) is read by both.
	SharedOption func(*config) error

	aggregatorOption func(*config) error
	handlerOption    func(*config) error
)

func (o SharedOption) aggregator(c *config) error     { return o(c) }
func (o SharedOption) handler(c *config) error        { return o(c) }
func (o aggregatorOption) aggregator(c *config) error { return o(c) }
func (o handlerOption) handler(c *config) error       { return o(c) }

type config struct {
	log        *slog.Logger
	reg        *metrics.Registry
	partitions int
	now        func() time.Time

	// Aggregator.
	consumer     string // durable consumer name prefix; partition appended
	startSeq     uint64 // first stream sequence for new consumers; 0: all
	flushEvery   time.Duration
	flushEvents  int
	ackWait      time.Duration
	pinnedTTL    time.Duration
	writers      int
	cpm          func(campaignID string) (float64, bool)
	maxDimValues int

	// Handler.
	campaignOwner func(campaignID string) (advertiserID string, ok bool)
	siteOwner     func(siteID string) (publisherID string, ok bool)
	campaigns     func(advertiserID string) []CampaignInfo
	sites         func(publisherID string) []SiteInfo
	tracking      func(number string) (campaignID string, ok bool)
	privacy       privacy.Options // the choke point's settings for call events
	queryCache    int64           // bytes; 0: none
}

func newConfig[O any](opts []O, apply func(O, *config) error) (config, error) {
	c := config{
		partitions:   event.DefaultPartitions,
		now:          time.Now,
		consumer:     "adsyn_stats",
		flushEvery:   2 * time.Second,
		flushEvents:  250_000,
		ackWait:      30 * time.Second,
		pinnedTTL:    10 * time.Second,
		writers:      32,
		maxDimValues: 1000,
		queryCache:   DefaultQueryCache,
	}
	for _, o := range opts {
		if any(o) == nil {
			continue
		}
		if err := apply(o, &c); err != nil {
			return config{}, err
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.reg == nil {
		c.reg = metrics.NewRegistry()
	}
	return c, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, args...)...)
}

// WithQueryCache bounds the memory the API keeps decoded records and
// merged days in (default DefaultQueryCache); 0 keeps none.
func WithQueryCache(bytes int64) HandlerOption {
	return handlerOption(func(c *config) error {
		if bytes < 0 {
			return bad("query cache of %d bytes", bytes)
		}
		c.queryCache = bytes
		return nil
	})
}

// WithPrivacy sets the choke point's options for the call events the
// handler stores (default: the built-in guard, /24 and /48).
func WithPrivacy(o privacy.Options) HandlerOption {
	return handlerOption(func(c *config) error { c.privacy = o; return nil })
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) SharedOption {
	return func(c *config) error { c.log = l; return nil }
}

// WithMetrics sets the registry (default: a private one).
func WithMetrics(r *metrics.Registry) SharedOption {
	return func(c *config) error { c.reg = r; return nil }
}

// WithPartitions sets N of the event partition scheme (default
// event.DefaultPartitions); it must match the publishers'.
func WithPartitions(n int) SharedOption {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return bad("partitions %d: want 1-1024", n)
		}
		c.partitions = n
		return nil
	}
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) SharedOption {
	return func(c *config) error {
		if now == nil {
			return bad("nil clock")
		}
		c.now = now
		return nil
	}
}

// WithConsumer names the durable consumers (default "adsyn_stats": one per
// partition, "adsyn_stats_<p>"), their checkpoints and membership keys.
// Aggregators with the same name share the work; under another name an
// aggregator reads the stream again into the same records, where the
// sequence check drops what is already applied.
func WithConsumer(name string) AggregatorOption {
	return aggregatorOption(func(c *config) error {
		if !ValidID(name) {
			return bad("consumer name %q: want [A-Za-z0-9_-]{1,64}", name)
		}
		c.consumer = name
		return nil
	})
}

// WithStartSequence makes new consumers start at this stream sequence rather
// than at the first message (benchmarks, replays).
func WithStartSequence(seq uint64) AggregatorOption {
	return aggregatorOption(func(c *config) error { c.startSeq = seq; return nil })
}

// WithFlush sets the longest pause between two writes of the counters
// (default 2s; the pause is twice the last write's duration, at least an
// eighth of this, so counts show within a fraction of a second when the
// load is light) and how many buffered events force a write (default
// 250,000; admission pauses at twice that).
func WithFlush(every time.Duration, events int) AggregatorOption {
	return aggregatorOption(func(c *config) error {
		if every < 10*time.Millisecond || every > time.Minute {
			return bad("flush interval %s: want 10ms-1m", every)
		}
		if events < 1 {
			return bad("flush events %d: want > 0", events)
		}
		c.flushEvery, c.flushEvents = every, events
		return nil
	})
}

// WithAckWait sets the consumers' ack wait (default 30s) and the pinned
// client TTL (default 10s): an aggregator that stops pulling for the TTL
// loses its partitions to another.
func WithAckWait(ackWait, pinnedTTL time.Duration) AggregatorOption {
	return aggregatorOption(func(c *config) error {
		if ackWait < time.Second || pinnedTTL < time.Second {
			return bad("ack wait %s, pinned TTL %s: want >= 1s", ackWait, pinnedTTL)
		}
		c.ackWait, c.pinnedTTL = ackWait, pinnedTTL
		return nil
	})
}

// WithCPM gives the CPM in force for a campaign: the spend of an impression
// event that carries no price of its own is CPM/1000.
func WithCPM(fn func(campaignID string) (float64, bool)) AggregatorOption {
	return aggregatorOption(func(c *config) error { c.cpm = fn; return nil })
}

// WithCampaignOwner gives a campaign's advertiser: marketers read only the
// statistics of their advertiser's campaigns.
func WithCampaignOwner(fn func(campaignID string) (advertiserID string, ok bool)) HandlerOption {
	return handlerOption(func(c *config) error { c.campaignOwner = fn; return nil })
}

// WithSiteOwner gives a site's publisher: publishers read only their sites.
func WithSiteOwner(fn func(siteID string) (publisherID string, ok bool)) HandlerOption {
	return handlerOption(func(c *config) error { c.siteOwner = fn; return nil })
}

// WithCampaigns lists an advertiser's campaigns ("" lists all) for the
// summary and the dashboard.
func WithCampaigns(fn func(advertiserID string) []CampaignInfo) HandlerOption {
	return handlerOption(func(c *config) error { c.campaigns = fn; return nil })
}

// WithSites lists a publisher's sites ("" lists all).
func WithSites(fn func(publisherID string) []SiteInfo) HandlerOption {
	return handlerOption(func(c *config) error { c.sites = fn; return nil })
}

// WithTrackingNumbers maps a call tracking number to its campaign.
func WithTrackingNumbers(fn func(number string) (campaignID string, ok bool)) HandlerOption {
	return handlerOption(func(c *config) error { c.tracking = fn; return nil })
}
