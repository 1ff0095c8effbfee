package app

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/stats"
)

// wireStats starts the aggregator (stats role) and serves statistics, the
// dashboard and call tracking (api role), answering questions about
// campaigns and sites from the catalog every process follows.
func (a *App) wireStats(ctx context.Context) error {
	if !a.cfg.Has(config.RoleStats) && !a.cfg.Has(config.RoleAPI) {
		return nil
	}
	a.numbers = stats.NewTrackingNumbers(a.snapshot, trackingNumbers)
	log, reg, parts := stats.WithLogger(a.log), stats.WithMetrics(a.reg), stats.WithPartitions(a.cfg.Partitions)
	if a.cfg.Has(config.RoleStats) {
		opts := []stats.AggregatorOption{log, reg, parts, stats.WithCPM(a.campaignCPM)}
		if t := a.cfg.Takeover; t > 0 {
			opts = append(opts, stats.WithAckWait(t, min(t, 10*time.Second)))
		}
		agg, err := stats.New(a.conn.JS, opts...)
		if err != nil {
			return err
		}
		if err := agg.Start(ctx); err != nil {
			return err
		}
		a.stops = append(a.stops, agg.Stop)
	}
	if a.cfg.Has(config.RoleAPI) {
		h, err := stats.NewHandler(ctx, a.conn.JS, a.keys, log, reg, parts,
			stats.WithCampaignOwner(a.campaignOwner),
			stats.WithSiteOwner(a.siteOwner),
			stats.WithCampaigns(a.campaignsOf),
			stats.WithSites(a.sitesOf),
			stats.WithTrackingNumbers(a.numbers.Campaign),
			stats.WithPrivacy(a.privacy()),
			stats.WithQueryCache(int64(a.cfg.StatsCacheMB)<<20))
		if err != nil {
			return err
		}
		h.Routes(a.mux)
	}
	return nil
}

func (a *App) snapshot() *adserver.Snapshot { return a.catalog.Index().Snap }

func (a *App) campaignCPM(id string) (float64, bool) {
	c, ok := a.snapshot().Campaigns[id]
	if !ok {
		return 0, false
	}
	return c.CPM, true
}

func (a *App) campaignOwner(id string) (string, bool) {
	c, ok := a.snapshot().Campaigns[id]
	if !ok {
		return "", false
	}
	return c.Advertiser, true
}

func (a *App) siteOwner(id string) (string, bool) {
	s, ok := a.snapshot().Sites[id]
	if !ok {
		return "", false
	}
	return s.Publisher, true
}

// campaignsOf lists an advertiser's campaigns ("" for all), by name.
func (a *App) campaignsOf(advertiser string) []stats.CampaignInfo {
	var out []stats.CampaignInfo
	for _, c := range a.snapshot().Campaigns {
		if advertiser == "" || c.Advertiser == advertiser {
			out = append(out, stats.CampaignInfo{ID: c.ID, Name: c.Name})
		}
	}
	slices.SortFunc(out, func(x, y stats.CampaignInfo) int { return strings.Compare(x.Name+x.ID, y.Name+y.ID) })
	return out
}

// sitesOf lists a publisher's sites ("" for all), by name.
func (a *App) sitesOf(publisher string) []stats.SiteInfo {
	var out []stats.SiteInfo
	for _, s := range a.snapshot().Sites {
		if publisher == "" || s.Publisher == publisher {
			out = append(out, stats.SiteInfo{ID: s.ID, Name: s.Name})
		}
	}
	slices.SortFunc(out, func(x, y stats.SiteInfo) int { return strings.Compare(x.Name+x.ID, y.Name+y.ID) })
	return out
}

// trackingNumbers lists the catalog's call tracking numbers for stats.
func trackingNumbers(snap *adserver.Snapshot, add func(number, campaign string)) {
	for _, c := range snap.Campaigns {
		for _, no := range c.TrackingNumbers {
			add(no, c.ID)
		}
	}
}
