package adserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/adsyn/adsyn/internal/bus"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Catalog keeps this process's Index current: it watches adsyn_campaigns,
// rebuilds the index shortly after every change and swaps it in atomically,
// and runs the Pacer that shares budget spend with the other edges.
type Catalog struct {
	cfg   *config
	kv    jetstream.KeyValue
	store *Store
	ix    atomic.Pointer[Index]
	pacer *Pacer

	kick   chan struct{} // tells the pacer a new index is in
	cancel context.CancelFunc
	wg     sync.WaitGroup

	builds, badValues *metrics.Counter
	buildTime         *metrics.Histogram
}

// rebuildDelay gathers a burst of changes into one rebuild.
const rebuildDelay = 25 * time.Millisecond

// NewCatalog loads the campaign model, builds the first index, and keeps
// both current until ctx ends or Close. Options: WithLogger, WithMetrics,
// WithClock, WithEdgeID, WithPaceInterval, WithTargetCheck.
func NewCatalog(ctx context.Context, js jetstream.JetStream, opts ...CatalogOption) (*Catalog, error) {
	cfg, err := newConfig(opts, CatalogOption.catalog)
	if err != nil {
		return nil, err
	}
	return newCatalog(ctx, js, cfg)
}

func newCatalog(ctx context.Context, js jetstream.JetStream, cfg *config) (*Catalog, error) {
	store, err := openStore(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	reg := cfg.metrics
	c := &Catalog{
		cfg: cfg, kv: store.kv, store: store, kick: make(chan struct{}, 1),
		builds:    reg.Counter("adsyn_ad_index_builds_total", "Targeting index rebuilds."),
		badValues: reg.Counter("adsyn_ad_catalog_bad_values_total", "Values in adsyn_campaigns that failed to decode or validate and were skipped."),
		buildTime: reg.Histogram("adsyn_ad_index_build_seconds", "Time to rebuild the targeting index.", metrics.LatencyBuckets),
	}
	reg.Gauge("adsyn_ad_index_campaigns", "Campaigns in the current targeting index.", func() float64 {
		if ix := c.ix.Load(); ix != nil {
			return float64(ix.Len())
		}
		return 0
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	fail := func(err error) (*Catalog, error) {
		stop()
		cancel()
		c.wg.Wait()
		return nil, err
	}
	c.pacer, err = newPacer(runCtx, c, cfg)
	if err != nil {
		return fail(err)
	}
	w, err := c.kv.WatchFiltered(runCtx, []string{
		prefixAdvertiser + ".*", prefixCampaign + ".*", prefixCreative + ".*", prefixSite + ".*",
	})
	if err != nil {
		return fail(fmt.Errorf("adserver: watch %s: %w", bus.BucketCampaigns, err))
	}
	ready := make(chan struct{})
	c.wg.Add(2)
	go c.watch(runCtx, w, ready)
	go c.pacer.run(runCtx)
	select {
	case <-ready:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(30 * time.Second):
		return fail(errors.New("adserver: campaign catalog did not load within 30s"))
	}
	return c, nil
}

// Index returns the current index; it is never nil after NewCatalog.
func (c *Catalog) Index() *Index { return c.ix.Load() }

// Store returns the catalog's store.
func (c *Catalog) Store() *Store { return c.store }

// Close stops watching and shares this edge's final spend.
func (c *Catalog) Close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Catalog) watch(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	defer c.wg.Done()
	defer func() { _ = w.Stop() }()
	snap := NewSnapshot()
	loaded := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				c.cfg.log.Error("adserver: campaign watch ended")
				return
			}
			if e == nil {
				if !loaded {
					loaded = true
					c.rebuild(snap)
					close(ready)
				}
				continue
			}
			c.apply(snap, e)
			if loaded {
				timer.Reset(rebuildDelay)
			}
		case <-timer.C:
			c.rebuild(snap)
		}
	}
}

// apply brings one KV change into the working snapshot.
func (c *Catalog) apply(s *Snapshot, e jetstream.KeyValueEntry) {
	prefix, id, _ := strings.Cut(e.Key(), ".")
	del := e.Operation() != jetstream.KeyValuePut
	var err error
	switch prefix {
	case prefixAdvertiser:
		err = applyOne(s.Advertisers, id, e.Value(), del, func(v *Advertiser) error { return v.Validate() })
	case prefixCampaign:
		err = applyOne(s.Campaigns, id, e.Value(), del, func(v *Campaign) error { return v.Validate(c.cfg.check) })
	case prefixCreative:
		err = applyOne(s.Creatives, id, e.Value(), del, func(v *Creative) error { return v.Validate() })
	case prefixSite:
		err = applyOne(s.Sites, id, e.Value(), del, func(v *Site) error { return v.Validate() })
	}
	if err != nil {
		c.badValues.Inc()
		c.cfg.log.Warn("adserver: skipping bad catalog value", "key", e.Key(), "err", err)
	}
}

func applyOne[T any](m map[string]*T, id string, b []byte, del bool, validate func(*T) error) error {
	if del {
		delete(m, id)
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		delete(m, id)
		return err
	}
	if err := validate(v); err != nil {
		delete(m, id)
		return err
	}
	m[id] = v
	return nil
}

func (c *Catalog) rebuild(s *Snapshot) {
	start := time.Now()
	frozen := &Snapshot{
		Advertisers: maps.Clone(s.Advertisers),
		Campaigns:   maps.Clone(s.Campaigns),
		Creatives:   maps.Clone(s.Creatives),
		Sites:       maps.Clone(s.Sites),
	}
	c.ix.Store(build(frozen, c.cfg.now(), c.pacer.paceFor, c.ix.Load()))
	c.builds.Inc()
	c.buildTime.Observe(time.Since(start).Seconds())
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
