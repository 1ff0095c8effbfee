package pixel

import (
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/cookie"
	"github.com/adsyn/adsyn/internal/ids"
)

// CookieName is the visitor-id cookie.
const CookieName = cookie.Visitor

// TCFCookie is where a CMP may have left the TC string.
const TCFCookie = cookie.TCF

// VisitorIDLen is the length of a visitor id: 128 random bits in base64url.
const VisitorIDLen = 22

// CookieMaxAge is 13 months, the longest a consent-based identifier is kept.
const CookieMaxAge = cookie.MaxAge

// ValidVisitorID reports whether b looks like an id adsyn issued: a
// visitor id (ids.ValidVisitor) of the length the pixel gives.
func ValidVisitorID(b []byte) bool { return len(b) == VisitorIDLen && ids.ValidVisitor(b) }

// NewVisitorID writes a fresh id into dst.
func NewVisitorID(dst *[VisitorIDLen]byte) {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // never fails since Go 1.24
	base64.RawURLEncoding.Encode(dst[:], raw[:])
}

// Cookies says how the edge writes its cookies (internal/cookie, shared by
// every door).
type Cookies = cookie.Policy

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
	s.GPC = consent.GPC(ctx.Request.Header.PeekCanonical(hdrGPC))
	s.OptOut = cookie.OptedOut(ctx)
	return consent.Evaluate(s, p)
}

// Visitor returns the visitor id of a request where storing on the device is
// allowed: the cookie's, or a new one written to the response (into buf), in
// which case issued is true. It returns nil without that permission, and then
// reads no cookie either. set is Consent's, which already withholds storing
// on the device from a request with the opt-out cookie.
func Visitor(ctx *fasthttp.RequestCtx, set consent.Set, c *Cookies, buf *[VisitorIDLen]byte) (id []byte, issued bool) {
	if !set.Allow(consent.StoreOnDevice) {
		return nil, false
	}
	if id := ctx.Request.Header.Cookie(CookieName); ValidVisitorID(id) {
		return id, false
	}
	NewVisitorID(buf)
	c.SetVisitor(ctx, buf[:])
	return buf[:], true
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
