package pixel

import (
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/device"
	"github.com/adsyn/adsyn/internal/event"
	"github.com/adsyn/adsyn/internal/metrics"
)

// Publisher takes events; Publish encodes e before it returns and reports
// false when the event was dropped (the publisher counts it). It is the
// privacy choke point (bus.Publisher): the pixel hands it what the request
// said, the full client address included, and it scrubs (P1, P2, P6).
type Publisher interface {
	Publish(e *event.Event) bool
}

// Limits on what a beacon may carry; longer values are cut or dropped.
const (
	MaxURL        = 2048
	MaxQuery      = 256
	MaxID         = 64 // site, slot, custom event name
	MaxCategories = 16
	MaxBody       = 8 << 10 // POST /p
)

// Options configure the pixel.
type Options struct {
	Consent        consent.Policy
	Cookies        Cookies
	TrustedProxies []netip.Prefix
	// Country returns the ISO country of a client address ("" if unknown);
	// only the country is kept, never the address (P6).
	Country func(netip.Addr) string
	// InRegion reports whether a country is in a configured GDPR region.
	InRegion func(country string) bool
	// SitePage reports whether a hit naming site may count for it: false
	// when the page that sent it is off the site's domains (the hit is kept
	// for no site, and counted on /metrics). Nil counts every hit.
	SitePage func(site string, hd *fasthttp.RequestHeader) bool
	Metrics  *metrics.Registry
	Log      *slog.Logger
}

// The metric of hits from pages off their site's domains (adserver counts
// its own door under the same name).
const (
	ForeignPageMetric = "adsyn_foreign_page_total"
	ForeignPageHelp   = "Requests naming a site from a page off its domains: answered, not counted for the site."
)

// Handler serves GET /p.gif and POST /p.
type Handler struct {
	pub  Publisher
	opts Options

	hits, bots, invalid, faults, foreign *metrics.Counter
	latency                              *metrics.Histogram
	devices                              device.Cache
}

// Request header names in fasthttp's canonical form, so that a lookup
// skips normalizing the name (the server normalizes every request's).
var (
	hdrPurpose           = []byte("Purpose")
	hdrSecPurpose        = []byte("Sec-Purpose")
	hdrXMoz              = []byte("X-Moz")
	hdrForwardedFor      = []byte("X-Forwarded-For")
	hdrAcceptLanguage    = []byte("Accept-Language")
	hdrGPC               = []byte("Sec-Gpc")
	hdrCHUA              = []byte("Sec-Ch-Ua")
	hdrCHMobile          = []byte("Sec-Ch-Ua-Mobile")
	hdrCHPlatform        = []byte("Sec-Ch-Ua-Platform")
	hdrCHPlatformVersion = []byte("Sec-Ch-Ua-Platform-Version")
	hdrCHModel           = []byte("Sec-Ch-Ua-Model")
)

// deviceHints are the headers device parsing reads.
func deviceHints(hd *fasthttp.RequestHeader) device.Hints {
	return device.Hints{
		UA:                hd.UserAgent(),
		CHUA:              hd.PeekCanonical(hdrCHUA),
		CHMobile:          hd.PeekCanonical(hdrCHMobile),
		CHPlatform:        hd.PeekCanonical(hdrCHPlatform),
		CHPlatformVersion: hd.PeekCanonical(hdrCHPlatformVersion),
		CHModel:           hd.PeekCanonical(hdrCHModel),
	}
}

// New returns the pixel handler publishing to pub.
func New(pub Publisher, opts Options) *Handler {
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewRegistry()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := opts.Metrics
	const name, help = "adsyn_pixel_requests_total", "Pixel requests by outcome."
	return &Handler{
		pub: pub, opts: opts,
		hits:    r.Counter(name, help, "outcome", "event"),
		bots:    r.Counter(name, help, "outcome", "bot"),
		invalid: r.Counter(name, help, "outcome", "invalid"),
		faults:  r.Counter("adsyn_edge_faults_total", "Internal faults answered without breaking the page.", "route", "pixel"),
		foreign: r.Counter(ForeignPageMetric, ForeignPageHelp, "door", "pixel"),
		latency: r.Histogram("adsyn_pixel_latency_seconds", "Pixel handler latency.", metrics.EdgeBuckets),
	}
}

// GIF is a 43-byte transparent 1x1 GIF.
var GIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

var (
	acceptCH     = []byte("Sec-CH-UA-Platform-Version, Sec-CH-UA-Model, Sec-CH-UA-Full-Version-List")
	contentGIF   = []byte("image/gif")
	headerCORP   = []byte("Cross-Origin-Resource-Policy") // pages that require it (COEP) may load the GIF
	crossOrigin  = []byte("cross-origin")
	noStore      = []byte("no-store, max-age=0")
	headerAccept = []byte("Accept-CH")
)

// GIF answers GET /p.gif.
func (h *Handler) GIF(ctx *fasthttp.RequestCtx) {
	start := arrival(ctx)
	h.capture(ctx, ctx.QueryArgs(), start)
	ctx.Response.Header.SetContentTypeBytes(contentGIF)
	ctx.Response.Header.SetCanonical(headerAccept, acceptCH)
	ctx.Response.Header.SetCanonical(strCacheControl, noStore)
	ctx.Response.Header.SetCanonical(headerCORP, crossOrigin)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(GIF)
	h.latency.Observe(time.Since(start).Seconds())
}

var strCacheControl = []byte("Cache-Control")

// arrival is when the server called the handler: it read the clock then,
// so the hit need not read it again.
func arrival(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}

// Beacon answers POST /p (navigator.sendBeacon): the body carries the same
// parameters as the GIF's query, form-encoded; the query is read as well.
func (h *Handler) Beacon(ctx *fasthttp.RequestCtx) {
	start := arrival(ctx)
	args := fasthttp.AcquireArgs()
	if body := ctx.Request.Body(); len(body) > 0 && len(body) <= MaxBody {
		args.ParseBytes(body)
	}
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if !args.Has(b2s(k)) {
			args.AddBytesKV(k, v)
		}
	})
	h.capture(ctx, args, start)
	fasthttp.ReleaseArgs(args)
	ctx.Response.Header.SetCanonical(headerAccept, acceptCH)
	ctx.Response.Header.SetCanonical(strCacheControl, noStore)
	ctx.Response.Header.SetCanonical(headerCORP, crossOrigin)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	h.latency.Observe(time.Since(start).Seconds())
}

type scratch struct {
	ev  event.Event
	uid [VisitorIDLen]byte
	ip  [64]byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{ev: event.Event{Categories: make([]string, 0, MaxCategories)}} }}

// capture turns the request into an event and publishes it. A panic here is a
// fault of ours: it is counted and the page still gets its answer.
func (h *Handler) capture(ctx *fasthttp.RequestCtx, args *fasthttp.Args, now time.Time) {
	defer func() {
		if r := recover(); r != nil {
			h.faults.Inc()
			h.opts.Log.Error("pixel: fault", "panic", r)
		}
	}()
	hd := &ctx.Request.Header
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	e := &s.ev
	e.Reset()
	if h.devices.Parse(deviceHints(hd), &e.Device) || device.IsPrefetch(hd.PeekCanonical(hdrPurpose), hd.PeekCanonical(hdrSecPurpose), hd.PeekCanonical(hdrXMoz)) {
		h.bots.Inc()
		return
	}
	kind := event.KindPageview
	if k := args.Peek("e"); len(k) > 0 {
		switch kind = event.ParseKind(k); kind {
		case event.KindPageview, event.KindSearch, event.KindConversion, event.KindError, event.KindCustom:
		default: // impressions, clicks and calls come from the ad server and the API only
			h.invalid.Inc()
			return
		}
	}
	e.ID = event.NewID()
	e.TS = now.UnixMilli() // the request's arrival, read once for the latency too
	e.Kind = kind

	remote := device.ClientIP(RemoteAddr(ctx), hd.PeekCanonical(hdrForwardedFor), h.opts.TrustedProxies)
	if h.opts.Country != nil && remote.IsValid() {
		e.Country = h.opts.Country(remote)
	}
	inRegion := h.opts.InRegion != nil && h.opts.InRegion(e.Country)
	e.Consent = Consent(ctx, args, h.opts.Consent, inRegion)
	// Without consent the hit is still counted, anonymously: no cookie, no
	// visitor id, a truncated address, and a snapshot that allows nothing.
	id, issued := Visitor(ctx, e.Consent, &h.opts.Cookies, &s.uid)
	e.Visitor, e.NewVisitor = b2s(id), issued
	if remote.IsValid() {
		e.IP = b2s(remote.AppendTo(s.ip[:0])) // the publisher truncates it (P6)
	}

	e.Site = text(args.Peek("site"), MaxID)
	if e.Site != "" && h.opts.SitePage != nil && !h.opts.SitePage(e.Site, hd) {
		h.foreign.Inc()
		e.Site = ""
	}
	e.Name = text(args.Peek("n"), MaxID)
	e.URL = text(args.Peek("u"), MaxURL)
	if e.URL == "" {
		e.URL = text(hd.Referer(), MaxURL)
	}
	e.Referrer = text(args.Peek("r"), MaxURL)
	e.Query = text(args.Peek("q"), MaxQuery)
	e.Categories = categories(e.Categories[:0], args.Peek("c"))
	if v := args.Peek("v"); len(v) > 0 && len(v) < 32 {
		if f, err := strconv.ParseFloat(b2s(v), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e12 {
			e.Value = f
		}
	}
	e.Lang = device.PrimaryLanguage(hd.PeekCanonical(hdrAcceptLanguage))
	h.hits.Inc()
	h.pub.Publish(e)
}

// text returns b as a string if it is valid UTF-8, cut to max bytes on a rune
// boundary; else "".
func text(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	if !utf8.Valid(b) {
		return ""
	}
	return b2s(b)
}

// categories splits a comma-separated list into dst, bounded in count and size.
func categories(dst []string, b []byte) []string {
	for len(b) > 0 && len(dst) < MaxCategories {
		i := 0
		for i < len(b) && b[i] != ',' {
			i++
		}
		if c := text(trimSpace(b[:i]), MaxID); c != "" {
			dst = append(dst, c)
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return dst
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// ErrorHandler answers requests the server could not parse (too large,
// malformed) with the transparent GIF: whatever element asked, a 1x1
// transparent image breaks nothing on a publisher's page.
func ErrorHandler(ctx *fasthttp.RequestCtx, _ error) {
	ctx.Response.Reset()
	ctx.Response.Header.SetCanonical(strCacheControl, noStore)
	ctx.Response.Header.SetContentTypeBytes(contentGIF)
	ctx.SetBody(GIF)
}
