package adserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Edge serves /ad, /tag.js, /click and /imp (and /demo) on the fasthttp
// edge. Handlers never answer 5xx: an internal fault is a 204 (no ad) and a
// count in adsyn_ad_requests_total{result="fault"}.
type Edge struct {
	cat    *Catalog
	cfg    *config
	sign   atomic.Pointer[signer] // replaced whole when the keys rotate
	recent *recent
	base   context.Context
	pool   sync.Pool

	counted   *counted // tracked events published, so a replay is not counted
	ceiling   *ceiling // nil: no ceiling per visitor
	uncharged [numUncharged]*metrics.Counter

	served, empty, faults, badReq, noConsent, profileGone, bots *metrics.Counter
	clicks, viewables, badTokens, expired, storeErrs            *metrics.Counter
	discarded, uncredentialed, foreignPage                      *metrics.Counter
	recordsLate, recordsShed                                    *metrics.Counter

	reads chan struct{} // cold record reads in flight, up to maxRecordReads
}

// Limits on /ad input.
const (
	maxCats    = 16
	maxPageURL = 1024
)

// adReq is one /ad request's working memory, pooled.
type adReq struct {
	req    Request
	cats   [maxCats]string
	recent [recentDepth]Impression
	ev     event.Event
	body   []byte
	doc    []byte
	click  []byte
	imp    []byte
}

// NewEdge returns the edge handlers over cat. ctx bounds visitor record
// reads. Requires WithTokenKeys; reads WithPublisher, WithSegments,
// WithConsent, WithGeo, WithProfileSource or WithProfiles, WithDevice, WithClientIP,
// WithCookies, WithBaseURL, WithTokenTTL, WithClock, WithLogger,
// WithMetrics, WithPixel.
func NewEdge(ctx context.Context, cat *Catalog, opts ...EdgeOption) (*Edge, error) {
	if cat == nil {
		return nil, errors.New("adserver: NewEdge needs a catalog")
	}
	cfg, err := newConfig(opts, EdgeOption.edge)
	if err != nil {
		return nil, err
	}
	if len(cfg.tokenKeys) == 0 {
		return nil, errors.New("adserver: NewEdge needs WithTokenKeys (the click and impression token key, P8)")
	}
	sign, err := newSigner(cfg.tokenSign, cfg.tokenKeys, nil)
	if err != nil {
		return nil, err
	}
	if cfg.device == nil {
		cfg.device = new(deviceCache).parse
	}
	if cfg.clientIP == nil {
		cfg.clientIP = remoteIP
	}
	if cfg.cards != nil && cfg.profiles == nil {
		cfg.profiles = profileCards(ctx, cfg.cards, cfg.cardsURL)
	}
	reg := cfg.metrics
	const reqName, reqHelp = "adsyn_ad_requests_total", "Ad requests by result."
	e := &Edge{
		cat: cat, cfg: cfg, recent: new(recent), base: ctx,
		served:         reg.Counter(reqName, reqHelp, "result", "served"),
		empty:          reg.Counter(reqName, reqHelp, "result", "empty"),
		noConsent:      reg.Counter(reqName, reqHelp, "result", "no_consent"),
		bots:           reg.Counter(reqName, reqHelp, "result", "bot"),
		badReq:         reg.Counter(reqName, reqHelp, "result", "bad_request"),
		profileGone:    reg.Counter(reqName, reqHelp, "result", "profile_unavailable"),
		faults:         reg.Counter(reqName, reqHelp, "result", "fault"),
		clicks:         reg.Counter("adsyn_ad_clicks_total", "Clicks with a valid token, redirected and counted."),
		viewables:      reg.Counter("adsyn_ad_viewables_total", "Viewable impressions with a valid token."),
		badTokens:      reg.Counter("adsyn_ad_bad_tokens_total", "Click and impression tokens refused as malformed, forged or altered."),
		expired:        reg.Counter("adsyn_ad_expired_tokens_total", "Authentic tokens past their lifetime, not counted."),
		storeErrs:      reg.Counter("adsyn_ad_record_errors_total", "Visitor record reads that failed (served contextually)."),
		discarded:      reg.Counter("adsyn_ad_events_discarded_total", "Events discarded because no publisher is configured."),
		uncredentialed: reg.Counter(reqName, reqHelp, "result", "origin_not_registered"),
		foreignPage:    reg.Counter(foreignPageMetric, foreignPageHelp, "door", "ad"),
		recordsLate: reg.Counter("adsyn_ad_record_late_total",
			"Ads decided without the visitor's record, which was not read within the edge's wait (capped campaigns and segment exclusions left out); the read went on."),
		recordsShed: reg.Counter("adsyn_ad_record_shed_total",
			"Ads decided without the visitor's record because too many record reads were in flight (capped campaigns and segment exclusions left out)."),
		reads: make(chan struct{}, maxRecordReads),
	}
	e.sign.Store(sign)
	// A token counts from 5 minutes before its issue time (clock skew) to its TTL after.
	e.counted = newCounted((cfg.tokenTTL + tokenSkew).Milliseconds(), defaultCountedMax)
	if cfg.ceiling > 0 {
		e.ceiling = newCeiling(cfg.ceiling)
	}
	for r := replay; r < numUncharged; r++ {
		e.uncharged[r] = reg.Counter("adsyn_ad_uncharged_total", "Ads, beacons and clicks answered but not counted or charged, by reason.", "reason", unchargedReasons[r])
	}
	reg.Gauge("adsyn_ad_replay_memory_early_rotations", "Early rotations of the replay memory because it was full: replays older than that may count again.", e.counted.rotatedEarly)
	if cat.pacer != nil {
		cat.pacer.serving.Store(true)
	}
	e.pool.New = func() any {
		return &adReq{body: make([]byte, 0, 4096), doc: make([]byte, 0, 4096), click: make([]byte, 0, 512), imp: make([]byte, 0, 512)}
	}
	return e, nil
}

// SetTokenKeys replaces the token keys while the edge serves: the key
// sign signs from now on, and every one of keys verifies. A rotation adds a
// key to keys first and makes it sign later, once every edge has it.
func (e *Edge) SetTokenKeys(sign byte, keys ...TokenKey) error {
	s, err := newSigner(sign, keys, e.sign.Load().bufs)
	if err != nil {
		return err
	}
	e.sign.Store(s)
	return nil
}

// Catalog returns the edge's catalog.
func (e *Edge) Catalog() *Catalog { return e.cat }

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// deviceCache parses a request's device through a device.Cache: most
// requests repeat a User-Agent seen a moment ago.
type deviceCache struct{ device.Cache }

var (
	hdrCHUA              = []byte("Sec-Ch-Ua")
	hdrCHMobile          = []byte("Sec-Ch-Ua-Mobile")
	hdrCHPlatform        = []byte("Sec-Ch-Ua-Platform")
	hdrCHPlatformVersion = []byte("Sec-Ch-Ua-Platform-Version")
	hdrCHModel           = []byte("Sec-Ch-Ua-Model")
)

func (c *deviceCache) parse(ctx *fasthttp.RequestCtx, d *event.Device) {
	h := &ctx.Request.Header
	c.Parse(device.Hints{ // names in fasthttp's canonical form: no normalizing per lookup
		UA:                h.UserAgent(),
		CHUA:              h.PeekCanonical(hdrCHUA),
		CHMobile:          h.PeekCanonical(hdrCHMobile),
		CHPlatform:        h.PeekCanonical(hdrCHPlatform),
		CHPlatformVersion: h.PeekCanonical(hdrCHPlatformVersion),
		CHModel:           h.PeekCanonical(hdrCHModel),
	}, d)
}

func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return ip
}

// splitCats splits "a,b,c" into dst as views of s, keeping valid tokens only.
func splitCats(s []byte, dst []string) []string {
	for len(s) > 0 && len(dst) < cap(dst) {
		var c []byte
		if i := bytes.IndexByte(s, ','); i >= 0 {
			c, s = s[:i], s[i+1:]
		} else {
			c, s = s, nil
		}
		if validCat(c) {
			dst = append(dst, b2s(c))
		}
	}
	return dst
}

func validCat(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '/' || c == ':' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// pageURL keeps scheme, host and path of the page: query strings and
// fragments can carry personal data and are never stored.
func pageURL(b []byte) string {
	if i := bytes.IndexAny(b, "?#"); i >= 0 {
		b = b[:i]
	}
	if len(b) > maxPageURL || !(bytes.HasPrefix(b, []byte("https://")) || bytes.HasPrefix(b, []byte("http://"))) {
		return ""
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return ""
		}
	}
	return b2s(b)
}

func (e *Edge) recoverFault(ctx *fasthttp.RequestCtx, where string) {
	if r := recover(); r != nil {
		e.faults.Inc()
		e.cfg.log.Error("adserver: handler fault", "handler", where, "panic", fmt.Sprint(r))
		ctx.Response.Reset()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

func (e *Edge) profile(user string) (ProfileCard, bool) {
	if e.cfg.profiles == nil {
		return ProfileCard{}, false
	}
	return e.cfg.profiles(user)
}

func (e *Edge) publish(ev *event.Event) {
	if e.cfg.publisher == nil {
		e.discarded.Inc()
		return
	}
	e.cfg.publisher.Publish(ev) // a drop is counted by the publisher
}

var (
	headerCacheControl = []byte("Cache-Control")
	noStore            = []byte("no-store")
	headerCSP          = []byte("Content-Security-Policy")
	htmlCSP            = []byte("sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox")
	headerNoSniff      = []byte("X-Content-Type-Options")
	nosniff            = []byte("nosniff")
)

// withoutPersonal removes what an opt-out removes: the visitor id, the
// profile and personalized selection.
func withoutPersonal(cs consent.Set) consent.Set {
	return cs.Without(consent.StoreOnDevice).Without(consent.BuildProfile).Without(consent.Personalize)
}

// appendBase appends the edge's origin for absolute click and impression URLs.
func (e *Edge) appendBase(b []byte, ctx *fasthttp.RequestCtx) []byte {
	if e.cfg.baseURL != "" {
		return append(b, e.cfg.baseURL...)
	}
	host := ctx.Host()
	if len(host) == 0 || len(host) > 255 {
		return b
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return b
		}
	}
	if e.cfg.cookies.OverTLS(ctx) { // X-Forwarded-Proto only from a trusted proxy
		b = append(b, "https://"...)
	} else {
		b = append(b, "http://"...)
	}
	return append(b, host...)
}

// appendAdJSON appends the /ad answer. doc is the creative's document or,
// when d.Doc holds it as a template, only the click URL escaped for HTML.
// appendAdJSON appends an ad as JSON. With a slot (a many-slot answer) it
// names the slot, and its html leaves out the document head the answer
// gives once.
func appendAdJSON(b []byte, id event.ID, d *Decision, doc, click, imp, slot []byte) []byte {
	b = append(b, '{')
	if slot != nil {
		b = append(b, `"slot":`...)
		b = appendJSON(b, b2s(slot))
		b = append(b, ',')
	}
	b = append(b, `"id":"`...)
	b = id.AppendHex(b)
	b = append(b, `","campaign":`...)
	b = appendJSON(b, d.Campaign.ID)
	b = append(b, `,"creative":`...)
	b = appendJSON(b, d.Creative.ID)
	b = append(b, `,"type":`...)
	b = appendJSON(b, string(d.Creative.Type))
	b = append(b, `,"w":`...)
	b = appendUint(b, d.W)
	b = append(b, `,"h":`...)
	b = appendUint(b, d.H)
	b = append(b, `,"click":`...)
	b = appendJSON(b, b2s(click))
	b = append(b, `,"imp":`...)
	b = appendJSON(b, b2s(imp))
	if n := d.Content.Native; n != nil && d.Creative.Type == Native {
		b = append(b, `,"native":{"title":`...)
		b = appendJSON(b, n.Title)
		for _, f := range [...]struct{ k, v string }{{"body", n.Body}, {"image", n.Image}, {"icon", n.Icon}, {"cta", n.CTA}, {"sponsor", n.Sponsor}} {
			if f.v != "" {
				b = append(b, ',', '"')
				b = append(b, f.k...)
				b = append(b, '"', ':')
				b = appendJSON(b, f.v)
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"html":`...)
	if d.Doc != nil {
		// doc is the click URL as HTML: the rest of the document is escaped already.
		b = append(b, '"')
		if slot == nil {
			b = append(b, jsonDocHead...)
		}
		b = d.Doc.appendJSONText(b, doc)
		b = append(b, '"')
	} else if bytes.HasPrefix(doc, []byte(docHead)) {
		b = append(b, '"')
		if slot == nil {
			b = append(b, jsonDocHead...)
		}
		b = appendJSONText(b, b2s(doc[len(docHead):]))
		b = append(b, '"')
	} else {
		b = appendJSON(b, b2s(doc))
	}
	return append(b, '}')
}

func appendUint(b []byte, v int) []byte {
	if v >= 10 {
		b = appendUint(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

// Route dispatches the edge paths of this package (GET and OPTIONS /ad, GET /tag.js,
// /click, /imp and /demo; HEAD /tag.js and /demo; POST /imp) and reports
// whether ctx was one of them.
func (e *Edge) Route(ctx *fasthttp.RequestCtx) bool {
	get := ctx.IsGet()
	switch string(ctx.Path()) {
	case "/ad":
		if get {
			e.Ad(ctx)
			return true
		}
		if ctx.IsOptions() {
			e.Preflight(ctx)
			return true
		}
	case "/tag.js":
		if get || ctx.IsHead() {
			e.TagJS(ctx)
			return true
		}
	case "/click":
		if get {
			e.Click(ctx)
			return true
		}
	case "/imp":
		if get || ctx.IsPost() {
			e.Imp(ctx)
			return true
		}
	case "/demo":
		if get || ctx.IsHead() {
			e.DemoPage(ctx)
			return true
		}
	}
	return false
}
