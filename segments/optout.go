package segments

import (
	"context"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/adsyn/adsyn/internal/consent"
	"github.com/adsyn/adsyn/internal/metrics"
)

// optOutMaxAge is 13 months, the longest a consent choice is kept.
const optOutMaxAge = 13 * 30 * 24 * time.Hour

var optOutPage = []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Opted out</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em">
<h1>You have opted out</h1>
<p>This browser will no longer get ads based on its interests. What we held about it has been deleted.</p>
<p>The choice is kept in a cookie for 13 months; clearing your cookies undoes it.</p>
</body></html>
`)

var optOutFailedPage = []byte(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Opt-out incomplete</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em">
<h1>Opt-out recorded, deletion pending</h1>
<p>This browser will no longer get interest-based ads, but what we held about it could not be deleted just now. Please reload this page in a moment.</p>
</body></html>
`)

// OptOut returns the edge handler of GET /optout. It sets the opt-out cookie
// (consent.OptOutCookie = "1", 13 months, HttpOnly; SameSite=None and Secure
// over TLS, Lax otherwise), expires the visitor id cookie, deletes the
// visitor's record through store, and answers a short HTML page, or 204 with
// ?format=none. If the deletion fails it answers 503 with the cookie set, so
// the person can retry. Nothing from the request outlives the handler.
// Options: WithVisitorCookie, WithCookieDomain, WithTimeout, WithLogger,
// WithMetrics.
func OptOut(store Store, opts ...Option) (fasthttp.RequestHandler, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	const name, help = "adsyn_segments_optouts_total", "Opt-outs at the edge, by outcome."
	m := struct{ deleted, none, failed *metrics.Counter }{
		deleted: o.reg.Counter(name, help, "outcome", "deleted"),
		none:    o.reg.Counter(name, help, "outcome", "no_visitor"),
		failed:  o.reg.Counter(name, help, "outcome", "failed"),
	}
	return func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		setCookie(ctx, consent.OptOutCookie, "1", optOutMaxAge, o.cookieDomain)

		ok := true
		if raw := ctx.Request.Header.Cookie(o.visitorCookie); len(raw) > 0 {
			visitor := string(raw) // a copy: the request's bytes are reused
			setCookie(ctx, o.visitorCookie, "", -1, o.cookieDomain)
			if ValidVisitor(visitor) {
				dctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				err := store.Delete(dctx, visitor)
				cancel()
				if err != nil {
					ok = false
					m.failed.Inc()
					o.log.Error("segments: opt-out could not delete the record", "err", err)
				} else {
					m.deleted.Inc()
				}
			} else {
				m.none.Inc()
			}
		} else {
			m.none.Inc()
		}

		switch {
		case !ok:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.Response.Header.Set("Retry-After", "5")
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(optOutFailedPage)
		case string(ctx.QueryArgs().Peek("format")) == "none":
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		default:
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(optOutPage)
		}
	}, nil
}

// setCookie adds a Set-Cookie; maxAge < 0 expires the cookie.
func setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge time.Duration, domain string) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(value)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	if domain != "" {
		c.SetDomain(domain)
	}
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetMaxAge(int(maxAge.Seconds()))
	}
	if ctx.IsTLS() {
		c.SetSecure(true)
		c.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	} else {
		c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	}
	ctx.Response.Header.SetCookie(c)
}
