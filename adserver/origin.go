package adserver

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/ids"
)

// A site's domains decide which pages /ad answers with credentials.

var (
	headerACAO = []byte("Access-Control-Allow-Origin")
	headerACAC = []byte("Access-Control-Allow-Credentials")
	headerVary = []byte("Vary")
	strOrigin  = []byte("Origin")
	strTrue    = []byte("true")
	strAny     = []byte("*")
)

// cors answers a cross-origin request to /ad and reports whether the
// visitor's cookie may be used for it. A page on one of the site's domains
// (or a subdomain of one) gets credentialed CORS; any other origin, "null"
// included, gets an answer it may read only without cookies, and the edge
// then uses no visitor id. A request without Origin is no cross-origin
// fetch (a navigation, an iframe): the browser's own cookie rules apply.
func (e *Edge) cors(ctx *fasthttp.RequestCtx, site []byte) bool {
	origin := ctx.Request.Header.PeekBytes(strOrigin)
	if len(origin) == 0 {
		return true
	}
	h := &ctx.Response.Header
	h.SetCanonical(headerVary, strOrigin)
	if site != nil && e.registered(origin, site, e.cfg.cookies.SecureFor(ctx)) {
		h.SetCanonical(headerACAO, origin)
		h.SetCanonical(headerACAC, strTrue)
		return true
	}
	h.SetCanonical(headerACAO, strAny)
	return false
}

// registered reports whether origin is a page of one of site's domains or
// of their subdomains. Only https origins count when the edge's cookies are
// Secure: a plain-HTTP page could be anyone's on the way.
func (e *Edge) registered(origin, site []byte, secure bool) bool {
	host, ok := originHost(origin, secure)
	if !ok {
		return false
	}
	se := e.cat.Index().sites[b2s(site)]
	if se == nil {
		return false
	}
	for _, d := range se.site.Domains {
		if len(host) == len(d) && b2s(host) == d ||
			len(host) > len(d) && host[len(host)-len(d)-1] == '.' && b2s(host[len(host)-len(d):]) == d {
			return true
		}
	}
	return false
}

// originHost returns the host of a serialized origin (scheme://host[:port]),
// which browsers send in lowercase.
func originHost(origin []byte, secure bool) ([]byte, bool) {
	var host []byte
	switch {
	case len(origin) > 256:
		return nil, false
	case bytes.HasPrefix(origin, []byte("https://")):
		host = origin[len("https://"):]
	case !secure && bytes.HasPrefix(origin, []byte("http://")):
		host = origin[len("http://"):]
	default:
		return nil, false
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		for _, c := range host[i+1:] {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
		host = host[:i]
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return nil, false
		}
	}
	return host, len(host) > 0
}

// Preflight answers OPTIONS /ad. The tag's request is a simple one and
// needs none; a page that asks anyway gets the same origin rule as /ad and
// no extra header or method.
func (e *Edge) Preflight(ctx *fasthttp.RequestCtx) {
	site := ctx.QueryArgs().Peek("site")
	if !ids.Valid(site) {
		site = nil
	}
	e.cors(ctx, site)
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", "GET")
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Allow", "GET, OPTIONS")
	h.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// normHost lowercases a host name and checks it: labels of 1-63 letters,
// digits and inner hyphens, 253 bytes at most, one trailing dot dropped.
// IP addresses and wildcards are not host names.
func normHost(h string) (string, bool) {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	allDigits := true
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for _, c := range []byte(label) {
			switch {
			case c >= 'a' && c <= 'z', c == '-':
				allDigits = false
			case c >= '0' && c <= '9':
			default:
				return "", false
			}
		}
	}
	return h, !allDigits
}
