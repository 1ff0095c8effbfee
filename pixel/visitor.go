package pixel

import (
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
)

// CookieName is the visitor-id cookie.
const CookieName = "uid"

// TCFCookie is where a CMP may have left the TC string.
const TCFCookie = "euconsent-v2"

// VisitorIDLen is the length of a visitor id: 128 random bits in base64url.
const VisitorIDLen = 22

// CookieMaxAge is 13 months, the longest a consent-based identifier is kept.
const CookieMaxAge = 395 * 24 * time.Hour

// ValidVisitorID reports whether b looks like an id adsyn issued.
func ValidVisitorID(b []byte) bool {
	if len(b) != VisitorIDLen {
		return false
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewVisitorID writes a fresh id into dst.
func NewVisitorID(dst *[VisitorIDLen]byte) {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // never fails since Go 1.24
	base64.RawURLEncoding.Encode(dst[:], raw[:])
}

// Cookies says how the edge writes its cookies.
type Cookies struct {
	Secure bool   // Secure; SameSite=None (also when the request came over TLS)
	Domain string // empty: the host of the edge
}

// Set writes a long-lived, HttpOnly cookie.
func (c Cookies) Set(ctx *fasthttp.RequestCtx, name string, value []byte) {
	ck := fasthttp.AcquireCookie()
	ck.SetKey(name)
	ck.SetValueBytes(value)
	ck.SetPath("/")
	ck.SetMaxAge(int(CookieMaxAge / time.Second))
	ck.SetHTTPOnly(true)
	if c.Domain != "" {
		ck.SetDomain(c.Domain)
	}
	if c.Secure || ctx.IsTLS() {
		ck.SetSecure(true)
		ck.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	} else {
		ck.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	ctx.Response.Header.SetCookie(ck)
	fasthttp.ReleaseCookie(ck)
}

// Consent evaluates a request's privacy signals: the gdpr and gdpr_consent
// parameters (args may be the query or a beacon body), the TCF cookie,
// Sec-GPC and the opt-out cookie.
func Consent(ctx *fasthttp.RequestCtx, args *fasthttp.Args, p consent.Policy, inRegion bool) consent.Set {
	s := consent.Signals{GDPRApplies: -1, InRegion: inRegion}
	switch g := args.Peek("gdpr"); {
	case len(g) == 1 && g[0] == '1':
		s.GDPRApplies = 1
	case len(g) == 1 && g[0] == '0':
		s.GDPRApplies = 0
	}
	s.TCString = args.Peek("gdpr_consent")
	if len(s.TCString) == 0 {
		s.TCString = ctx.Request.Header.Cookie(TCFCookie)
	}
	s.GPC = consent.GPC(ctx.Request.Header.Peek("Sec-GPC"))
	s.OptOut = consent.OptedOut(ctx.Request.Header.Cookie(consent.OptOutCookie))
	return consent.Evaluate(s, p)
}

// Visitor returns the visitor id of a request where storing on the device is
// allowed: the cookie's, or a new one written to the response (into buf). It
// returns nil without that permission, and then reads no cookie either.
func Visitor(ctx *fasthttp.RequestCtx, set consent.Set, c Cookies, buf *[VisitorIDLen]byte) []byte {
	if !set.Allow(consent.StoreOnDevice) {
		return nil
	}
	if id := ctx.Request.Header.Cookie(CookieName); ValidVisitorID(id) {
		return id
	}
	NewVisitorID(buf)
	c.Set(ctx, CookieName, buf[:])
	return buf[:]
}

// RemoteAddr returns the connection's peer address without allocating.
func RemoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// b2s views b as a string without copying; valid only while b is.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
