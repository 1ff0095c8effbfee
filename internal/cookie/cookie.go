package cookie

import (
	"bytes"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
)

// The edge's cookies, named once.
const (
	// Visitor holds the visitor id the pixel issues.
	Visitor = "uid"
	// OptOut holds the opt-out choice; its value is "1".
	OptOut = consent.OptOutCookie
	// TCF is where a CMP may have left the TC string.
	TCF = "euconsent-v2"
)

// MaxAge is 13 months, the longest a consent-based identifier or a choice is kept.
const MaxAge = 395 * 24 * time.Hour

// Policy says how the edge writes its cookies.
//
// A cookie is "Secure; SameSite=None", so the browser sends it in
// third-party contexts (on a publisher's page), when Secure is set or when
// the request came over TLS: directly, or through a trusted proxy saying
// "X-Forwarded-Proto: https". Over plain HTTP it is "SameSite=Lax", since
// browsers refuse SameSite=None without Secure: the cookie then works on the
// edge's own pages only.
type Policy struct {
	Secure bool // always Secure; SameSite=None (TLS ends at a proxy that does not say so)
	// Partitioned adds CHIPS "Partitioned" to the visitor id, for browsers
	// that block third-party cookies. The id is then one per top-level site:
	// no frequency caps or interests across sites. Only a secure cookie can
	// be partitioned; the opt-out cookie never is, so that it holds
	// everywhere.
	Partitioned    bool
	Domain         string         // empty: the edge's host
	TrustedProxies []netip.Prefix // whose X-Forwarded-Proto is believed
}

var (
	headerProto = []byte("X-Forwarded-Proto")
	https       = []byte("https")
	optOutValue = []byte("1")
)

// OverTLS reports whether the request came over TLS, directly or through a
// trusted proxy that says so; any other client's X-Forwarded-Proto is ignored.
func (p *Policy) OverTLS(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return true
	}
	proto := ctx.Request.Header.PeekBytes(headerProto)
	if len(proto) == 0 || !p.trusted(ctx) {
		return false
	}
	// A chain of proxies may append: the last value is the nearest one's.
	if i := bytes.LastIndexByte(proto, ','); i >= 0 {
		proto = proto[i+1:]
	}
	return bytes.EqualFold(bytes.TrimSpace(proto), https)
}

// trusted reports whether the connection's peer is a trusted proxy.
func (p *Policy) trusted(ctx *fasthttp.RequestCtx) bool {
	if len(p.TrustedProxies) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, pfx := range p.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// SecureFor reports whether cookies written for this request are Secure;
// SameSite=None: under Secure, or over TLS.
func (p *Policy) SecureFor(ctx *fasthttp.RequestCtx) bool { return p.Secure || p.OverTLS(ctx) }

// SetVisitor writes the visitor id cookie (13 months, HttpOnly).
func (p *Policy) SetVisitor(ctx *fasthttp.RequestCtx, id []byte) {
	p.write(ctx, Visitor, id, MaxAge, p.Partitioned)
}

// DeleteVisitor expires the visitor id cookie, with the attributes it was
// written with (a browser keeps a cookie whose deletion does not match it).
func (p *Policy) DeleteVisitor(ctx *fasthttp.RequestCtx) {
	p.write(ctx, Visitor, nil, -1, p.Partitioned)
}

// SetOptOut writes the opt-out cookie (13 months, HttpOnly), never partitioned.
func (p *Policy) SetOptOut(ctx *fasthttp.RequestCtx) {
	p.write(ctx, OptOut, optOutValue, MaxAge, false)
}

// OptedOut reports whether the request carries the opt-out cookie.
func OptedOut(ctx *fasthttp.RequestCtx) bool {
	return consent.OptedOut(ctx.Request.Header.Cookie(OptOut))
}

// write adds one Set-Cookie; maxAge < 0 expires the cookie. It appends
// the header's bytes itself, as fasthttp.Cookie would serialise them (a
// test holds the two to the same bytes), so the value is copied once, not
// set on a Cookie, serialised and copied again. A value or domain fasthttp
// would rewrite (';', CR, LF), or a response that already sets the cookie
// (SetCookie replaces it), goes through fasthttp.Cookie.
func (p *Policy) write(ctx *fasthttp.RequestCtx, name string, value []byte, maxAge time.Duration, partitioned bool) {
	secure := p.SecureFor(ctx)
	if !plain(value) || !plain(bytesOf(p.Domain)) || ctx.Response.Header.PeekCookie(name) != nil {
		p.writeCookie(ctx, name, value, maxAge, secure, partitioned)
		return
	}
	var buf [256]byte
	b := append(buf[:0], name...)
	b = append(b, '=')
	b = append(b, value...)
	switch secs := maxAge / time.Second; {
	case maxAge < 0:
		b = append(b, "; max-age=0"...) // fasthttp writes max-age=0 for -1 (fasthttp#1900)
	case maxAge == MaxAge:
		b = append(b, maxAgeAttr...)
	case secs > 0: // 0 writes no max-age: a session cookie
		b = append(b, "; max-age="...)
		b = strconv.AppendInt(b, int64(secs), 10)
	}
	if p.Domain != "" {
		b = append(b, "; domain="...)
		b = append(b, p.Domain...)
	}
	switch {
	case secure && partitioned:
		b = append(b, "; path=/; HttpOnly; secure; SameSite=None; Partitioned"...)
	case secure:
		b = append(b, "; path=/; HttpOnly; secure; SameSite=None"...)
	default:
		b = append(b, "; path=/; HttpOnly; SameSite=Lax"...)
	}
	ctx.Response.Header.SetCanonical(headerSetCookie, b)
}

var (
	headerSetCookie = []byte("Set-Cookie")
	maxAgeAttr      = "; max-age=" + strconv.Itoa(int(MaxAge/time.Second))
)

// plain reports whether fasthttp.Cookie keeps b as it is in a Set-Cookie
// value: no ';' (made a space), CR or LF (made spaces).
func plain(b []byte) bool {
	for _, c := range b {
		if c == ';' || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// writeCookie adds one Set-Cookie through fasthttp.Cookie, replacing one of
// the same name the response already sets.
func (p *Policy) writeCookie(ctx *fasthttp.RequestCtx, name string, value []byte, maxAge time.Duration, secure, partitioned bool) {
	c := fasthttp.AcquireCookie()
	c.SetKey(name)
	c.SetValueBytes(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	if p.Domain != "" {
		c.SetDomain(p.Domain)
	}
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
		c.SetMaxAge(-1)
	} else {
		c.SetMaxAge(int(maxAge / time.Second))
	}
	if secure {
		c.SetSecure(true)
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode)
		if partitioned {
			c.SetPartitioned(true)
		}
	} else {
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	ctx.Response.Header.SetCookie(c)
	fasthttp.ReleaseCookie(c)
}
