package adserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/segments"
)

// Publisher takes events to ADSYN_EVENTS. Publish encodes e before it
// returns (so e may point into request memory) and reports false when the
// event was dropped, which the publisher has already counted.
type Publisher interface {
	Publish(e *event.Event) bool
}

// Each constructor takes its own option type, so an option it would not
// read does not compile (as nats.go's jetstream does with PullConsumeOpt
// and its siblings). An option that several constructors read has a type
// of its own that satisfies each of their option types.
type (
	// StoreOption configures NewStore and DemoSeed.
	StoreOption interface{ store(*config) error }
	// CatalogOption configures NewCatalog.
	CatalogOption interface{ catalog(*config) error }
	// EdgeOption configures NewEdge.
	EdgeOption interface{ edge(*config) error }
	// HandlerOption configures NewHandler, and the catalog it opens
	// without WithCatalog.
	HandlerOption interface{ handler(*config) error }
)

// The options read by more than one constructor.
type (
	// ObserveOption (logger, metrics) is read by NewCatalog, NewEdge and NewHandler.
	ObserveOption func(*config) error
	// ClockOption is read by every constructor.
	ClockOption func(*config) error
	// PacingOption is read by NewCatalog and NewHandler.
	PacingOption func(*config) error
	// ModelOption (the P1 target check) is read by NewStore, NewCatalog and NewHandler.
	ModelOption func(*config) error
	// RecordsOption (visitor records) is read by NewEdge and NewHandler.
	RecordsOption func(*config) error
)

// Options of one constructor only.
type (
	edgeOption    func(*config) error
	handlerOption func(*config) error
)

func (o ObserveOption) catalog(c *config) error { return o(c) }
func (o ObserveOption) edge(c *config) error    { return o(c) }
func (o ObserveOption) handler(c *config) error { return o(c) }
func (o ClockOption) store(c *config) error     { return o(c) }
func (o ClockOption) catalog(c *config) error   { return o(c) }
func (o ClockOption) edge(c *config) error      { return o(c) }
func (o ClockOption) handler(c *config) error   { return o(c) }
func (o PacingOption) catalog(c *config) error  { return o(c) }
func (o PacingOption) handler(c *config) error  { return o(c) }
func (o ModelOption) store(c *config) error     { return o(c) }
func (o ModelOption) catalog(c *config) error   { return o(c) }
func (o ModelOption) handler(c *config) error   { return o(c) }
func (o RecordsOption) edge(c *config) error    { return o(c) }
func (o RecordsOption) handler(c *config) error { return o(c) }
func (o edgeOption) edge(c *config) error       { return o(c) }
func (o handlerOption) handler(c *config) error { return o(c) }

type config struct {
	log       *slog.Logger
	metrics   *metrics.Registry
	now       func() time.Time
	edgeID    string
	paceEvery time.Duration
	check     func(string) error
	publisher Publisher
	segments  Records
	tokenKeys []TokenKey
	tokenSign byte // the id of the key that signs
	tokenTTL  time.Duration
	consent   func(*fasthttp.RequestCtx) consent.Set
	geo       *Geo
	profiles  func(userID string) (ProfileCard, bool)
	cards     ProfileSource
	cardsURL  string
	device    func(*fasthttp.RequestCtx, *event.Device)
	clientIP  func(*fasthttp.RequestCtx) netip.Addr
	cookies   *cookie.Policy
	baseURL   string
	catalog   *Catalog
	pixel     string
	bots      bool
	ceiling   int // charged impressions per visitor per minute; 0: none
	// recordWait bounds how long /ad waits for a visitor record its store
	// must read (a store with Peek and Load); < 0: as long as the read takes.
	recordWait time.Duration
}

// newConfig applies opts with apply, the option type's own method.
func newConfig[O any](opts []O, apply func(O, *config) error) (*config, error) {
	c := &config{
		now:        time.Now,
		paceEvery:  500 * time.Millisecond,
		tokenTTL:   24 * time.Hour,
		recordWait: defaultRecordWait,
		cookies:    &cookie.Policy{},
		consent:    func(*fasthttp.RequestCtx) consent.Set { return consent.Set(0).With(consent.Contextual) },
	}
	for _, o := range opts {
		if err := apply(o, c); err != nil {
			return nil, err
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.metrics == nil {
		c.metrics = metrics.NewRegistry()
	}
	return c, nil
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) ObserveOption {
	return func(c *config) error { c.log = l; return nil }
}

// WithMetrics registers the package's metrics in reg (default: a private registry).
func WithMetrics(reg *metrics.Registry) ObserveOption {
	return func(c *config) error { c.metrics = reg; return nil }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) ClockOption {
	return func(c *config) error {
		if now == nil {
			return errors.New("adserver: WithClock(nil)")
		}
		c.now = now
		return nil
	}
}

// WithEdgeID names this process in the shared pacing state (key pace.<id>).
// A stable id lets a restarted edge continue its own counters; the default
// is random, which is correct too (a stopped edge's counts stay in its key).
func WithEdgeID(id string) PacingOption {
	return func(c *config) error {
		if !ValidID(id) {
			return fmt.Errorf("adserver: edge id %q must be 1-64 of A-Z a-z 0-9 _ -", id)
		}
		c.edgeID = id
		return nil
	}
}

// WithPaceInterval sets how often an edge shares its spend and recomputes
// budget limits (default 500ms). Overshoot of a budget is bounded by about
// one interval's delivery per edge.
func WithPaceInterval(d time.Duration) PacingOption {
	return func(c *config) error {
		if d < 10*time.Millisecond || d > time.Minute {
			return fmt.Errorf("adserver: pace interval %s must be 10ms to 1m", d)
		}
		c.paceEvery = d
		return nil
	}
}

// WithTargetCheck adds a P1 check run on every segment and category a
// campaign targets; an error refuses the campaign. Plug the segments
// taxonomy's guard in here.
func WithTargetCheck(check func(segmentOrCategory string) error) ModelOption {
	return func(c *config) error { c.check = check; return nil }
}

// WithPublisher sets where impression, viewable and click events go.
// Without one, events are counted and discarded.
func WithPublisher(p Publisher) EdgeOption {
	return edgeOption(func(c *config) error { c.publisher = p; return nil })
}

// Records reads visitor records; segments.Store satisfies it. Get returns
// a nil record (or an error) for an unknown visitor; a record it returns
// must not be modified afterwards (a cache may share it).
type Records interface {
	Get(ctx context.Context, visitor string) (*segments.Record, error)
}

// WithSegments sets the visitor record store (frequency caps, segments).
func WithSegments(s Records) RecordsOption {
	return func(c *config) error { c.segments = s; return nil }
}

// defaultRecordWait is how long /ad waits for a visitor record the cache
// does not hold: a cold read queued behind others in a busy bucket takes
// milliseconds, and the page waits for the ad.
const defaultRecordWait = time.Millisecond

// WithRecordWait bounds how long /ad waits for a visitor record that its
// store (one with Peek and Load, as segments.KVStore) must read from the
// bucket. Past it the ad is decided without the record, failing closed:
// campaigns with frequency caps or segment exclusions are left out, since
// the record could rule them out; the read goes on and fills the cache for
// the visitor's next request. Negative: wait as long as the read takes.
// Default 1ms.
func WithRecordWait(d time.Duration) EdgeOption {
	return edgeOption(func(c *config) error {
		if d > time.Minute {
			return fmt.Errorf("adserver: record wait %s is over a minute", d)
		}
		c.recordWait = d
		return nil
	})
}

// WithTokenKeys sets the HMAC-SHA256 keys of click and impression tokens
// (P8): the first signs, every one verifies (for rotation). Each must be at
// least 32 bytes. Required by NewEdge.
func WithTokenKeys(keys ...[]byte) EdgeOption {
	set := make([]TokenKey, len(keys))
	for i, k := range keys {
		set[i] = TokenKey{ID: byte(i), Key: k}
	}
	return WithTokenKeySet(0, set...)
}

// WithTokenKeySet sets the token keys by id: the key sign signs, every one
// verifies. Edge.SetTokenKeys replaces them while the edge runs (rotation).
func WithTokenKeySet(sign byte, keys ...TokenKey) EdgeOption {
	return edgeOption(func(c *config) error {
		if _, err := newSigner(sign, keys, nil); err != nil {
			return err
		}
		c.tokenKeys, c.tokenSign = keys, sign
		return nil
	})
}

// WithTokenTTL sets how long click and impression tokens count (default 24h).
// An authentic click past it still redirects, uncounted.
func WithTokenTTL(d time.Duration) EdgeOption {
	return edgeOption(func(c *config) error {
		if d < time.Minute || d > 30*24*time.Hour {
			return fmt.Errorf("adserver: token TTL %s must be 1m to 720h", d)
		}
		c.tokenTTL = d
		return nil
	})
}

// WithConsent sets how the edge reads a request's consent. The default
// allows contextual ads only: no visitor id, no segments.
func WithConsent(fn func(*fasthttp.RequestCtx) consent.Set) EdgeOption {
	return edgeOption(func(c *config) error {
		if fn == nil {
			return errors.New("adserver: WithConsent(nil)")
		}
		c.consent = fn
		return nil
	})
}

// WithGeo sets the IP geolocation database (see OpenGeo); without it,
// country and region are unknown and campaigns that include countries do not serve.
func WithGeo(g *Geo) EdgeOption {
	return edgeOption(func(c *config) error { c.geo = g; return nil })
}

// WithProfileSource sets where profile creatives come from: the edge shows
// the public view of a user who allows advertising use of it (P2: never
// contact details), with links under publicURL, the API's public origin.
func WithProfileSource(src ProfileSource, publicURL string) EdgeOption {
	return edgeOption(func(c *config) error {
		if src == nil {
			return errors.New("adserver: WithProfileSource(nil)")
		}
		if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("adserver: profile URL %q must be an http(s) origin", publicURL)
		}
		c.cards, c.cardsURL = src, publicURL
		return nil
	})
}

// WithProfiles sets the cards of profile creatives directly: the public
// view of a user who allows advertising use of it, or false.
func WithProfiles(fn func(userID string) (ProfileCard, bool)) EdgeOption {
	return edgeOption(func(c *config) error { c.profiles = fn; return nil })
}

// WithDevice replaces how the edge reads the device from a request (default:
// internal/device from User-Agent and Client Hints). fn must not allocate.
func WithDevice(fn func(*fasthttp.RequestCtx, *event.Device)) EdgeOption {
	return edgeOption(func(c *config) error { c.device = fn; return nil })
}

// WithClientIP sets how the edge finds the client address (behind proxies);
// the default is the connection's remote address. The address is used for
// geolocation only and never stored.
func WithClientIP(fn func(*fasthttp.RequestCtx) netip.Addr) EdgeOption {
	return edgeOption(func(c *config) error { c.clientIP = fn; return nil })
}

// WithCookies sets the edge's cookie policy (internal/cookie), shared with
// the pixel and /optout: whether a request came over TLS (its click and
// impression URLs then say https) is read through it, so X-Forwarded-Proto
// counts only from its trusted proxies. Default: no trusted proxy.
func WithCookies(p *cookie.Policy) EdgeOption {
	return edgeOption(func(c *config) error {
		if p == nil {
			return errors.New("adserver: WithCookies(nil)")
		}
		c.cookies = p
		return nil
	})
}

// WithBaseURL sets the edge's public origin ("https://ads.example.com") used
// in click and impression URLs; by default they are built from the request's
// Host header.
func WithBaseURL(u string) EdgeOption {
	return edgeOption(func(c *config) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Path != "" {
			return fmt.Errorf("adserver: base URL %q must be an origin such as https://ads.example.com", u)
		}
		c.baseURL = u
		return nil
	})
}

// WithCatalog shares an existing catalog with NewHandler (for explain with
// the edge's pacing state) instead of opening another.
func WithCatalog(cat *Catalog) HandlerOption {
	return handlerOption(func(c *config) error { c.catalog = cat; return nil })
}

// WithPixel sets an HTML snippet (the tracking pixel) the demo page includes.
func WithPixel(html string) EdgeOption {
	return edgeOption(func(c *config) error { c.pixel = html; return nil })
}

// WithBots serves ads to requests whose User-Agent is a crawler, HTTP
// library or headless browser (internal/device's bot test), which by
// default get 204 so they spend no budget.
func WithBots(serve bool) EdgeOption {
	return edgeOption(func(c *config) error { c.bots = serve; return nil })
}

// WithVisitorCeiling caps the impressions charged to campaigns per visitor
// per minute on this edge (0, the default: no ceiling). An ad past it is
// still answered, but not counted, charged or paced, and neither are its
// beacon and click; adsyn_ad_uncharged_total{reason="visitor_ceiling"}
// counts it.
func WithVisitorCeiling(perMinute int) EdgeOption {
	return edgeOption(func(c *config) error {
		if perMinute < 0 || perMinute > 1_000_000 {
			return fmt.Errorf("adserver: visitor ceiling %d must be 0 (none) to 1000000 per minute", perMinute)
		}
		c.ceiling = perMinute
		return nil
	})
}
