package app

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/adserver"
	"github.com/adsyn/adsyn/internal/config"
	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/demo"
	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/pixel"
	"github.com/adsyn/adsyn/segments"
	"github.com/adsyn/adsyn/segments/taxonomy"
)

// wire builds every role's parts and registers their routes.
func (a *App) wire(ctx context.Context) error {
	if a.cfg.Has(config.RoleAPI) {
		a.coreRoutes()
	}
	if err := a.wireSegments(ctx); err != nil {
		return err
	}
	if err := a.wireProfiles(ctx); err != nil {
		return err
	}
	if a.cfg.GeoIPFile != "" {
		geo, err := adserver.OpenGeo(a.cfg.GeoIPFile)
		if err != nil {
			return fmt.Errorf("--geoip: %w", err)
		}
		a.geo = geo
		a.stops = append(a.stops, func(context.Context) error { return geo.Close() })
	}
	cat, err := adserver.NewCatalog(ctx, a.conn.JS, adserver.WithLogger(a.log), adserver.WithMetrics(a.reg), adserver.WithEdgeID(a.edgeID()), adserver.WithTargetCheck(a.checkTarget))
	if err != nil {
		return err
	}
	a.catalog = cat
	// Closed after the edge has drained: it writes this edge's final spend.
	a.stops = append(a.stops, func(context.Context) error { cat.Close(); return nil })
	if a.cfg.Has(config.RoleEdge) {
		if err := a.wireEdge(ctx); err != nil {
			return err
		}
	}
	if a.cfg.Has(config.RoleAPI) {
		h, err := adserver.NewHandler(ctx, a.conn.JS, a.keys, adserver.WithLogger(a.log), adserver.WithMetrics(a.reg),
			adserver.WithSegments(a.visitors), adserver.WithTargetCheck(a.checkTarget), adserver.WithCatalog(a.catalog))
		if err != nil {
			return err
		}
		h.Routes(a.mux)
		a.stops = append(a.stops, func(context.Context) error { h.Close(); return nil })
	}
	if a.cfg.Demo {
		if err := adserver.DemoSeed(ctx, a.conn.JS); err != nil {
			return fmt.Errorf("app: demo campaigns: %w", err)
		}
	}
	return a.wireStats(ctx)
}

// wireSegments opens the visitor store (edge, api), starts the builder
// (segments role) and registers the visibility and taxonomy API.
func (a *App) wireSegments(ctx context.Context) error {
	a.taxonomy = taxonomy.NewLive(nil)
	shared, err := segments.ShareTaxonomy(ctx, a.conn.JS, a.taxonomy, a.log)
	if err != nil {
		return err
	}
	if a.cfg.TaxonomyFile != "" {
		if err := a.loadTaxonomy(ctx, shared); err != nil {
			return err
		}
	}
	if a.cfg.Has(config.RoleEdge) || a.cfg.Has(config.RoleAPI) {
		// An edge's cache is filled by the watch too, so a visitor's record
		// is in memory by the time their next ad request comes.
		store, err := segments.NewKVStore(ctx, a.conn.JS, segments.WithLogger(a.log), segments.WithMetrics(a.reg),
			segments.WithCache(int64(a.cfg.SegmentCacheMB)<<20, 10*time.Minute, time.Minute),
			segments.WithWarmCache(a.cfg.Has(config.RoleEdge)))
		if err != nil {
			return err
		}
		a.visitors = store
		a.stops = append(a.stops, func(context.Context) error { store.Close(); return nil })
	}
	if a.cfg.Has(config.RoleSegments) {
		opts := []segments.BuilderOption{segments.WithLogger(a.log), segments.WithMetrics(a.reg),
			segments.WithPartitions(a.cfg.Partitions), segments.WithRecordTTL(a.cfg.SegmentTTL)}
		if a.cfg.Takeover > 0 {
			opts = append(opts, segments.WithTakeover(a.cfg.Takeover))
		}
		b, err := segments.NewBuilder(a.conn, a.taxonomy, opts...)
		if err != nil {
			return err
		}
		a.startWorker("segments builder", b.Run)
	}
	if a.cfg.Has(config.RoleAPI) {
		h, err := segments.NewHandler(a.visitors, a.taxonomy, a.keys, segments.WithLogger(a.log), segments.WithSharedTaxonomy(shared))
		if err != nil {
			return err
		}
		h.Routes(a.mux)
	}
	return nil
}

// loadTaxonomy puts the operator's --taxonomy file in force everywhere.
func (a *App) loadTaxonomy(ctx context.Context, shared *segments.Shared) error {
	f, err := os.Open(a.cfg.TaxonomyFile)
	if err != nil {
		return fmt.Errorf("--taxonomy: %w", err)
	}
	defer f.Close()
	t, err := taxonomy.Load(f)
	if err != nil {
		return fmt.Errorf("--taxonomy %s: %w", a.cfg.TaxonomyFile, err)
	}
	if _, err := shared.Put(ctx, t.File()); err != nil {
		return fmt.Errorf("--taxonomy: %w", err)
	}
	return nil
}

// checkTarget refuses campaign targeting of a taxonomy segment that is
// sensitive (P1). It is asked about page categories too, which are not
// segments: those, like every value, have passed the sensitive-term guard.
func (a *App) checkTarget(id string) error {
	if t := a.taxonomy.Load(); t.Has(id) {
		return t.CheckTarget(id)
	}
	return nil
}

// country is the country of a client address, from the geo database.
func (a *App) country(addr netip.Addr) string {
	if a.geo == nil || !addr.IsValid() {
		return ""
	}
	c, _ := a.geo.Lookup(addr)
	return c
}

func (a *App) inRegion(country string) bool {
	return country != "" && slices.Contains(a.cfg.GDPRCountries, country)
}

func (a *App) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	return device.ClientIP(pixel.RemoteAddr(ctx), ctx.Request.Header.Peek("X-Forwarded-For"), a.cfg.TrustedProxies)
}

// requestConsent is what one edge request is allowed (P3).
func (a *App) requestConsent(ctx *fasthttp.RequestCtx) consent.Set {
	inRegion := a.geo != nil && a.inRegion(a.country(a.clientIP(ctx)))
	return pixel.Consent(ctx, ctx.QueryArgs(), a.consentPolicy(), inRegion)
}

// edgeID names this edge's pacing state; stable across restarts of the
// same process on the same machine and data.
func (a *App) edgeID() string {
	host, _ := os.Hostname()
	dir, _ := filepath.Abs(a.cfg.DataDir)
	return strconv.FormatUint(xxhash.Sum64String(host+"|"+dir+"|"+a.cfg.HTTPAddr), 36)
}

func (a *App) wireEdge(ctx context.Context) error {
	px := pixel.New(a.pub, pixel.Options{
		Consent:        a.consentPolicy(),
		Cookies:        a.cookies(),
		TrustedProxies: a.cfg.TrustedProxies,
		Country:        a.country,
		InRegion:       a.inRegion,
		SitePage:       a.catalog.SitePage,
		Metrics:        a.reg,
		Log:            a.log,
	})
	a.routes["/p.gif"] = px.GIF
	a.routes["/p"] = px.Beacon
	a.routes["/.well-known/gpc.json"] = gpcJSON
	a.routes["/healthz"] = func(ctx *fasthttp.RequestCtx) {
		if err := a.health(); err != nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(err.Error())
			return
		}
		ctx.SetBodyString("ok")
	}

	cookies := a.cookies()
	optout, err := segments.OptOut(a.visitors, &cookies, a.cfg.Retention, segments.WithLogger(a.log), segments.WithMetrics(a.reg))
	if err != nil {
		return err
	}
	a.routes["/optout"] = optout

	tokens, tokenKeys, err := a.loadTokenKeys(ctx)
	if err != nil {
		return err
	}
	opts := []adserver.EdgeOption{adserver.WithLogger(a.log), adserver.WithMetrics(a.reg),
		adserver.WithSegments(a.visitors),
		tokenKeys,
		adserver.WithPublisher(a.pub),
		adserver.WithConsent(a.requestConsent),
		adserver.WithClientIP(a.clientIP),
		adserver.WithCookies(&cookies),
		adserver.WithPixel(demo.Pixel),
		adserver.WithProfileSource(a.profileReader, a.apiURL()),
		adserver.WithVisitorCeiling(a.cfg.AdVisitorCeiling),
		adserver.WithRecordWait(a.cfg.AdRecordWait),
	}
	if a.geo != nil {
		opts = append(opts, adserver.WithGeo(a.geo))
	}
	edge, err := adserver.NewEdge(ctx, a.catalog, opts...)
	if err != nil {
		return err
	}
	if err := tokens.follow(ctx, edge); err != nil {
		return err
	}
	a.adEdge = edge
	return nil
}

// gpcJSON is the GPC support resource: adsyn honours Sec-GPC.
func gpcJSON(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"gpc": true, "lastUpdate": "2026-11-25"}`)
}
