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

	// Cross-Origin-Resource-Policy lets pages that require it (COEP) load
	// the edge's answers.
	headerCORP  = []byte("Cross-Origin-Resource-Policy")
	crossOrigin = []byte("cross-origin")
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
	return se != nil && onDomains(host, se.site.Domains)
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

// SitePage reports whether an event of this request may count for site:
// false only when the page that sent it is known and is not on one of the
// site's domains (or their subdomains). Anyone may write any site id into a
// tag; a browser on another site's page cannot hide that page's origin
// (Origin, else Referer; the tag asks with referrerPolicy "origin"). A
// request naming no page, a site without domains and an unknown site are
// counted: there is nothing to hold them to. An opaque origin ("null") is
// no page of any site. It allocates nothing.
func (c *Catalog) SitePage(site string, hd *fasthttp.RequestHeader) bool {
	page := hd.PeekBytes(strOrigin)
	if len(page) == 0 {
		page = hd.Referer()
		if len(page) == 0 {
			return true
		}
	}
	se := c.Index().sites[site]
	if se == nil || len(se.site.Domains) == 0 {
		return true
	}
	host, ok := pageHost(page)
	return ok && onDomains(host, se.site.Domains)
}

// pageHost returns the host of an origin or URL (http or https), lowercased
// by the browser already; the scheme does not matter for attribution.
func pageHost(page []byte) ([]byte, bool) {
	if len(page) > 2048 {
		return nil, false
	}
	if i := bytes.Index(page, []byte("://")); i >= 0 {
		page = page[i+3:]
	} else {
		return nil, false
	}
	if i := bytes.IndexAny(page, "/?#"); i >= 0 {
		page = page[:i]
	}
	if i := bytes.LastIndexByte(page, '@'); i >= 0 {
		page = page[i+1:] // userinfo is never the host
	}
	if i := bytes.LastIndexByte(page, ':'); i >= 0 {
		page = page[:i]
	}
	return page, len(page) > 0
}

// onDomains reports whether host is one of domains or a subdomain of one.
func onDomains(host []byte, domains []string) bool {
	for _, d := range domains {
		if len(host) == len(d) && b2s(host) == d ||
			len(host) > len(d) && host[len(host)-len(d)-1] == '.' && b2s(host[len(host)-len(d):]) == d {
			return true
		}
	}
	return false
}

// The metric of requests from pages off their site's domains, a family
// shared with the pixel (pixel.ForeignPageMetric), by door.
const (
	foreignPageMetric = "adsyn_foreign_page_total"
	foreignPageHelp   = "Requests naming a site from a page off its domains: answered, not counted for the site."
)
