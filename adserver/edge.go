package adserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/ids"
	"github.com/adsyn/adsyn/internal/metrics"
	"github.com/adsyn/adsyn/segments"
)

// Edge serves /ad, /tag.js, /click and /imp (and /demo) on the fasthttp
// edge. Handlers never answer 5xx: an internal fault is a 204 (no ad) and a
// count in adsyn_ad_requests_total{result="fault"}.
type Edge struct {
	cat    *Catalog
	cfg    *config
	sign   *signer
	recent *recent
	base   context.Context
	pool   sync.Pool

	counted   *counted // tracked events published, so a replay is not counted
	ceiling   *ceiling // nil: no ceiling per visitor
	uncharged [numUncharged]*metrics.Counter

	served, empty, faults, badReq, noConsent, profileGone, bots *metrics.Counter
	clicks, viewables, badTokens, expired, storeErrs            *metrics.Counter
	discarded, uncredentialed, foreignPage                      *metrics.Counter
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
	if cfg.device == nil {
		cfg.device = parseDevice
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
		cat: cat, cfg: cfg, sign: newSigner(cfg.tokenKeys), recent: new(recent), base: ctx,
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
	}
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

// Catalog returns the edge's catalog.
func (e *Edge) Catalog() *Catalog { return e.cat }

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func parseDevice(ctx *fasthttp.RequestCtx, d *event.Device) {
	h := &ctx.Request.Header
	device.Parse(device.Hints{
		UA:                h.UserAgent(),
		CHUA:              h.Peek("Sec-CH-UA"),
		CHMobile:          h.Peek("Sec-CH-UA-Mobile"),
		CHPlatform:        h.Peek("Sec-CH-UA-Platform"),
		CHPlatformVersion: h.Peek("Sec-CH-UA-Platform-Version"),
		CHModel:           h.Peek("Sec-CH-UA-Model"),
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

// Ad answers GET /ad?site=&slot=[&u=visitor][&c=cat1,cat2][&lang=][&url=page]
// [&fmt=json|html][&cred=1] with the chosen ad, or 204 when there is none.
// The consent of the request (WithConsent) decides what is used: nothing
// without contextual consent, no visitor id (u or the cookie) without
// consent to store on device or with the opt-out cookie, no segments without
// consent to personalize (P3). A cross-origin request from a page that is
// not on the site's domains gets no credentialed CORS and no visitor id
// (the tag's credentialed try, cred=1, gets a 204). fmt=html is served
// sandboxed (CSP): the creative runs in an opaque origin.
func (e *Edge) Ad(ctx *fasthttp.RequestCtx) {
	defer e.recoverFault(ctx, "ad")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.SetCanonical(headerCORP, crossOrigin)
	args := ctx.QueryArgs()
	site, slot := args.Peek("site"), args.Peek("slot")
	if !ids.Valid(site) || !ids.Valid(slot) {
		e.badReq.Inc()
		e.cors(ctx, nil)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString("site and slot must be ids (1-64 of A-Z a-z 0-9 _ -)\n")
		return
	}
	withCookies := e.cors(ctx, site)
	if !withCookies && len(args.Peek("cred")) > 0 {
		// The tag's credentialed try from a page of no registered domain:
		// the browser refuses this answer and the tag asks again without
		// cookies. Deciding now would count the impression twice.
		e.uncredentialed.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	cs := e.cfg.consent(ctx)
	if cookie.OptedOut(ctx) {
		cs = withoutPersonal(cs) // P3 holds whatever the consent source says
	}
	if !cs.Allow(consent.Contextual) {
		e.noConsent.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	a := e.pool.Get().(*adReq)
	defer e.pool.Put(a)
	r := &a.req
	*r = Request{
		Now:         e.cfg.now().UnixMilli(),
		Site:        b2s(site),
		Slot:        b2s(slot),
		Personalize: cs.Allow(consent.Personalize) && cs.Allow(consent.StoreOnDevice),
		Rand:        rand.Uint64(),
	}
	ev := &a.ev
	ev.Reset()
	e.cfg.device(ctx, &ev.Device)
	r.Device = ev.Device.Type
	if r.Device == device.TypeBot && !e.cfg.bots {
		// Crawlers and headless tools would spend advertisers' budgets.
		e.bots.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	var visitor []byte
	if cs.Allow(consent.StoreOnDevice) && withCookies {
		visitor = args.Peek("u")
		if len(visitor) == 0 {
			visitor = ctx.Request.Header.Cookie(cookie.Visitor)
		}
		if !ids.ValidVisitor(visitor) {
			visitor = nil
		}
	}
	var vhash uint64
	if visitor != nil {
		vhash = xxhash.Sum64(visitor)
		if e.cfg.segments != nil {
			// A copy: the store may keep the key in its cache.
			rec, err := e.cfg.segments.Get(e.base, string(visitor))
			if err != nil {
				if !errors.Is(err, segments.ErrNotFound) {
					e.storeErrs.Inc()
				}
			} else {
				r.Record = rec
			}
		}
		r.Recent = e.recent.get(vhash, a.recent[:0])
	}
	if l := args.Peek("lang"); len(l) > 0 {
		r.Lang = device.PrimaryLanguage(l)
	} else {
		r.Lang = device.PrimaryLanguage(ctx.Request.Header.Peek("Accept-Language"))
	}
	r.Country, r.Region = e.cfg.geo.Lookup(e.cfg.clientIP(ctx))
	r.Categories = splitCats(args.Peek("c"), a.cats[:0])

	ix := e.cat.Index()
	d, ok := ix.Decide(r)
	if !ok {
		e.empty.Inc()
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	var card *ProfileCard
	if d.Creative.Type == Profile {
		c, ok := e.profile(d.Creative.ProfileUser)
		if !ok {
			e.profileGone.Inc()
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		card = &c
		if c.URL != "" && checkLanding("", c.URL, true) == nil {
			d.Landing = c.URL
		}
	}
	// Past the visitor's ceiling the ad is answered, and nothing of it counts.
	isCharged := visitor == nil || e.ceiling.charge(vhash, r.Now)
	if isCharged {
		d.Pace.Charge(d.CPM)
	}
	if visitor != nil {
		e.recent.add(vhash, Impression{Campaign: d.Hash, At: r.Now})
	}

	ev.ID = event.NewID()
	if !isCharged {
		e.uncharged[visitorCeiling].Inc()
		e.counted.mark(trackedID(ev.ID, event.KindViewable), r.Now, visitorCeiling)
		e.counted.mark(trackedID(ev.ID, event.KindClick), r.Now, visitorCeiling)
	}
	ev.TS = r.Now
	ev.Kind = event.KindImpression
	ev.Site, ev.Slot = r.Site, r.Slot
	if !e.cat.SitePage(r.Site, &ctx.Request.Header) {
		e.foreignPage.Inc() // served, but not the site's to count
		ev.Site = ""
	}
	ev.Campaign, ev.Creative = d.Campaign.ID, d.Creative.ID
	ev.Value = float64(d.CPM) / 1e9 // the price of this impression: CPM (micros) per thousand
	ev.URL = pageURL(args.Peek("url"))
	ev.Categories = append(ev.Categories[:0], r.Categories...)
	ev.Lang, ev.Country = r.Lang, r.Country
	ev.Consent = cs
	if visitor != nil {
		ev.Visitor = b2s(visitor)
	}
	tok := Token{Issued: r.Now / 1000, Imp: ev.ID, Consent: cs, Campaign: ev.Campaign, Creative: ev.Creative,
		Site: ev.Site, Slot: ev.Slot, Visitor: ev.Visitor, Landing: d.Landing}
	a.click = e.appendBase(a.click[:0], ctx)
	a.click = append(a.click, "/click?t="...)
	tok.Kind = TokenClick
	a.click = e.sign.Append(a.click, &tok)
	a.imp = e.appendBase(a.imp[:0], ctx)
	a.imp = append(a.imp, "/imp?t="...)
	tok.Kind = TokenImpression
	a.imp = e.sign.Append(a.imp, &tok)

	asHTML := string(args.Peek("fmt")) == "html"
	switch {
	case d.Doc == nil: // a profile card, rendered now
		a.doc = appendDoc(a.doc[:0], d.Creative.Type, d.Content, d.W, d.H, card, a.click)
	case asHTML:
		a.doc = d.Doc.appendHTML(a.doc[:0], a.click)
	default: // the template goes straight into the JSON; doc holds the click as HTML
		a.doc = appendHTML(a.doc[:0], a.click)
	}
	if asHTML {
		// A marketer's HTML on the edge's origin could set the edge's
		// cookies: the sandbox gives it an opaque origin instead.
		ctx.Response.Header.SetCanonical(headerCSP, htmlCSP)
		ctx.Response.Header.SetCanonical(headerNoSniff, nosniff)
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(a.doc)
	} else {
		a.body = appendAdJSON(a.body[:0], ev.ID, &d, a.doc, a.click, a.imp)
		ctx.SetContentType("application/json")
		ctx.SetBody(a.body)
	}
	e.served.Inc()
	if isCharged {
		e.publish(ev)
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
	headerCSP     = []byte("Content-Security-Policy")
	htmlCSP       = []byte("sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox")
	headerNoSniff = []byte("X-Content-Type-Options")
	nosniff       = []byte("nosniff")
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
func appendAdJSON(b []byte, id event.ID, d *Decision, doc, click, imp []byte) []byte {
	b = append(b, `{"id":"`...)
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
		b = d.Doc.appendJSONText(b, doc)
		b = append(b, '"')
	} else if bytes.HasPrefix(doc, []byte(docHead)) {
		b = append(b, '"')
		b = append(b, jsonDocHead...)
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
